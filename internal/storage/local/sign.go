package local

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
)

// Query parameters of a signed URL.
const (
	qMethod = "method"
	qExp    = "exp"
	qMax    = "max"
	qName   = "dn"
	qOnce   = "once"
	qSig    = "sig"
)

// grant is what a verified signed URL allows.
type grant struct {
	Method       string // http.MethodGet or http.MethodPut
	Bucket, Path string
	Expires      time.Time
	MaxSize      int64  // PUT only
	CreateOnly   bool   // PUT only: refuse to replace an existing object
	DownloadName string // GET only
}

// signature is base64url(HMAC-SHA256(key, canonical form)). Every field is
// length-prefixed so no two distinct grants share a canonical form.
func (s *Store) signature(g grant, exp, max string) string {
	mac := hmac.New(sha256.New, s.key)
	once := ""
	if g.CreateOnly {
		once = "1"
	}
	for _, f := range []string{"brightrun-storage-url-v2", g.Method, g.Bucket, g.Path, exp, max, g.DownloadName, once} {
		fmt.Fprintf(mac, "%d:%s\n", len(f), f)
	}
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *Store) signURL(g grant) string {
	exp := strconv.FormatInt(g.Expires.Unix(), 10)
	max := ""
	q := url.Values{qMethod: {g.Method}, qExp: {exp}}
	if g.Method == http.MethodPut {
		max = strconv.FormatInt(g.MaxSize, 10)
		q.Set(qMax, max)
	}
	if g.DownloadName != "" {
		q.Set(qName, g.DownloadName)
	}
	if g.CreateOnly {
		q.Set(qOnce, "1")
	}
	q.Set(qSig, s.signature(g, exp, max))
	return s.baseURL + s.prefix + "/" + g.Bucket + "/" + escapePath(g.Path) + "?" + q.Encode()
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// verify checks a signed URL's query for bucket/path. It returns errors
// wrapping storage.ErrBadSignature or storage.ErrExpired.
func (s *Store) verify(bucket, p string, q url.Values) (grant, error) {
	g := grant{Method: q.Get(qMethod), Bucket: bucket, Path: p, DownloadName: q.Get(qName), CreateOnly: q.Get(qOnce) == "1"}
	exp, max, sig := q.Get(qExp), q.Get(qMax), q.Get(qSig)
	if sig == "" || exp == "" || (g.Method != http.MethodGet && g.Method != http.MethodPut) {
		return g, fmt.Errorf("%w: the URL is not a complete signed storage URL", storage.ErrBadSignature)
	}
	want := s.signature(g, exp, max)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return g, fmt.Errorf("%w: the URL was altered or was not issued by this server", storage.ErrBadSignature)
	}
	// Signed values are trusted from here on.
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return g, fmt.Errorf("%w: bad expiry", storage.ErrBadSignature)
	}
	g.Expires = time.Unix(secs, 0)
	if q.Has(qOnce) && q.Get(qOnce) != "1" {
		return g, fmt.Errorf("%w: bad %s parameter", storage.ErrBadSignature, qOnce)
	}
	if g.Method == http.MethodPut {
		if g.MaxSize, err = strconv.ParseInt(max, 10, 64); err != nil || g.MaxSize < 0 {
			return g, fmt.Errorf("%w: bad size limit", storage.ErrBadSignature)
		}
	}
	if !s.now().Before(g.Expires) {
		return g, fmt.Errorf("%w: the link expired at %s; request a new one", storage.ErrExpired, g.Expires.UTC().Format(time.RFC3339))
	}
	return g, nil
}

// SignedUploadURL implements storage.Storage. The URL accepts PUTs of at
// most o.MaxSize bytes to exactly this bucket and path until it expires
// (with o.CreateOnly, only while the object does not exist), each also
// subject to the bucket's UploadGuard.
func (s *Store) SignedUploadURL(ctx context.Context, bucket, p string, o storage.UploadOptions) (string, map[string]string, error) {
	_, p, err := s.object(bucket, p)
	if err != nil {
		return "", nil, err
	}
	if o.MaxSize <= 0 {
		return "", nil, errors.New("local storage: UploadOptions.MaxSize must be positive")
	}
	if err := storage.CheckSize(bucket, o.MaxSize); err != nil {
		return "", nil, err
	}
	ttl, err := storage.ResolveTTL(o.TTL)
	if err != nil {
		return "", nil, err
	}
	u := s.signURL(grant{Method: http.MethodPut, Bucket: bucket, Path: p, Expires: s.expiry(ttl), MaxSize: o.MaxSize, CreateOnly: o.CreateOnly})
	headers := map[string]string{}
	if o.ContentType != "" {
		headers["Content-Type"] = o.ContentType
	}
	return u, headers, nil
}

// SignedDownloadURL implements storage.Storage.
func (s *Store) SignedDownloadURL(ctx context.Context, bucket, p string, ttl time.Duration, downloadName string) (string, error) {
	_, p, err := s.object(bucket, p)
	if err != nil {
		return "", err
	}
	ttl, err = storage.ResolveTTL(ttl)
	if err != nil {
		return "", err
	}
	return s.signURL(grant{Method: http.MethodGet, Bucket: bucket, Path: p, Expires: s.expiry(ttl), DownloadName: downloadName}), nil
}

// expiry rounds up to whole seconds so a URL never lives shorter than ttl.
func (s *Store) expiry(ttl time.Duration) time.Time {
	return s.now().Add(ttl + time.Second - 1).Truncate(time.Second)
}
