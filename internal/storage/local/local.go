// Package local is the file-system storage backend: objects live under
// Root/<bucket>/<path>, and the BrightRun binary itself serves the
// HMAC-signed upload and download URLs through Handler.
package local

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/url"
	"os"
	pathpkg "path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
)

// DefaultPathPrefix is where Handler expects to be mounted.
const DefaultPathPrefix = "/storage/v1"

// tempPrefix marks in-progress uploads; object paths may not use it
// (storage.CleanPath refuses it).
const tempPrefix = storage.ReservedPrefix

// Options configures a local Store.
type Options struct {
	// Root is the directory holding one sub-directory per bucket (created
	// if missing), e.g. <data dir>/storage.
	Root string
	// BaseURL is the public base URL of the server, e.g.
	// http://localhost:8080; signed URLs are BaseURL + PathPrefix + "/...".
	BaseURL string
	// PathPrefix is where Handler is mounted; default DefaultPathPrefix.
	PathPrefix string
	// Secret keys the URL signatures (at least 16 bytes). A purpose-specific
	// key is derived from it, so the server's general signing secret can be
	// passed here.
	Secret []byte
	// Now is the clock used to sign and check expiry; default time.Now.
	Now func() time.Time
	// AllowedOrigins are extra origins (scheme://host[:port]) allowed to
	// use signed URLs cross-origin; BaseURL's own origin is always allowed.
	AllowedOrigins []string
	// Logger receives unexpected server-side errors; default slog.Default().
	Logger *slog.Logger
}

// Store is the local backend. It implements storage.Storage.
type Store struct {
	roots   map[string]*os.Root
	baseURL string
	prefix  string
	key     []byte
	now     func() time.Time
	origins map[string]bool
	log     *slog.Logger

	guardMu sync.RWMutex
	guards  map[string]storage.UploadGuard
	// commitMu serialises the last step of every write (guard check, then
	// rename into place) with Delete, so a delete and a late upload cannot
	// interleave: either the upload lands first and Delete removes it, or
	// the guard already refuses it.
	commitMu sync.Mutex
}

var (
	_ storage.Storage       = (*Store)(nil)
	_ storage.UploadGuarder = (*Store)(nil)
)

// GuardUploads makes signed uploads to bucket ask g first, before reading
// the body and again just before the object is put in place (see
// storage.UploadGuard). Call it while wiring, before serving requests.
func (s *Store) GuardUploads(bucket string, g storage.UploadGuard) {
	s.guardMu.Lock()
	defer s.guardMu.Unlock()
	if s.guards == nil {
		s.guards = map[string]storage.UploadGuard{}
	}
	s.guards[bucket] = g
}

// checkGuard runs the bucket's upload guard, if any.
func (s *Store) checkGuard(ctx context.Context, bucket, p string) error {
	s.guardMu.RLock()
	g := s.guards[bucket]
	s.guardMu.RUnlock()
	if g == nil {
		return nil
	}
	return g(ctx, bucket, p)
}

// New creates the bucket directories under o.Root and opens them.
func New(o Options) (*Store, error) {
	if o.Root == "" {
		return nil, errors.New("local storage: Root is required")
	}
	if len(o.Secret) < 16 {
		return nil, errors.New("local storage: Secret must be at least 16 bytes")
	}
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("local storage: BaseURL %q must be an absolute http(s) URL", o.BaseURL)
	}
	prefix := o.PathPrefix
	if prefix == "" {
		prefix = DefaultPathPrefix
	}
	prefix = "/" + strings.Trim(prefix, "/")
	s := &Store{
		roots:   map[string]*os.Root{},
		baseURL: strings.TrimRight(o.BaseURL, "/"),
		prefix:  prefix,
		now:     o.Now,
		origins: map[string]bool{base.Scheme + "://" + base.Host: true},
		log:     o.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, origin := range o.AllowedOrigins {
		s.origins[strings.TrimRight(origin, "/")] = true
	}
	mac := hmac.New(sha256.New, o.Secret)
	mac.Write([]byte("brightrun local storage URL signing key v1"))
	s.key = mac.Sum(nil)

	if err := os.MkdirAll(o.Root, 0o750); err != nil {
		return nil, fmt.Errorf("local storage: %w", err)
	}
	for _, b := range storage.Buckets() {
		dir := pathpkg.Join(o.Root, b)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			s.Close()
			return nil, fmt.Errorf("local storage: %w", err)
		}
		r, err := os.OpenRoot(dir)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("local storage: %w", err)
		}
		s.roots[b] = r
	}
	return s, nil
}

// Close releases the bucket directory handles.
func (s *Store) Close() error {
	for _, r := range s.roots {
		r.Close()
	}
	return nil
}

// object validates bucket and path and returns the bucket's root.
func (s *Store) object(bucket, p string) (*os.Root, string, error) {
	p, err := storage.CheckObject(bucket, p)
	if err != nil {
		return nil, "", err
	}
	return s.roots[bucket], p, nil
}

// mapErr turns file-system errors into the storage sentinels.
func mapErr(op, bucket, p string, err error) error {
	var pe *fs.PathError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s %s/%s: %w", op, bucket, p, storage.ErrNotFound)
	case errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent",
		errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%s %s/%s: %w: it resolves outside its bucket", op, bucket, p, storage.ErrInvalidPath)
	}
	return fmt.Errorf("%s %s/%s: %w", op, bucket, p, err)
}

// Stat implements storage.Storage. Content types are derived from the file
// extension (the local backend keeps no per-object metadata).
func (s *Store) Stat(ctx context.Context, bucket, p string) (storage.ObjectInfo, error) {
	root, p, err := s.object(bucket, p)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	fi, err := root.Stat(p)
	if err != nil {
		return storage.ObjectInfo{}, mapErr("stat", bucket, p, err)
	}
	if !fi.Mode().IsRegular() {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s/%s: %w", bucket, p, storage.ErrNotFound)
	}
	return infoOf(p, fi), nil
}

func infoOf(p string, fi fs.FileInfo) storage.ObjectInfo {
	return storage.ObjectInfo{
		Size:        fi.Size(),
		ContentType: ContentTypeFor(p),
		ModTime:     fi.ModTime(),
		ETag:        fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()),
	}
}

var knownTypes = map[string]string{
	".json":        "application/json",
	".jsonl":       "application/x-jsonlines",
	".ndjson":      "application/x-jsonlines",
	".tar":         "application/x-tar",
	".gz":          "application/gzip",
	".tgz":         "application/gzip",
	".zip":         "application/zip",
	".safetensors": "application/octet-stream",
	".bin":         "application/octet-stream",
	".txt":         "text/plain; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
}

// ContentTypeFor guesses a content type from an object path's extension.
func ContentTypeFor(p string) string {
	ext := strings.ToLower(pathpkg.Ext(p))
	if t, ok := knownTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Open implements storage.Storage; the returned reader is an *os.File.
func (s *Store) Open(ctx context.Context, bucket, p string) (io.ReadCloser, error) {
	f, _, err := s.openFile(bucket, p)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (s *Store) openFile(bucket, p string) (*os.File, fs.FileInfo, error) {
	root, p, err := s.object(bucket, p)
	if err != nil {
		return nil, nil, err
	}
	f, err := root.Open(p)
	if err != nil {
		return nil, nil, mapErr("open", bucket, p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, mapErr("open", bucket, p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("open %s/%s: %w", bucket, p, storage.ErrNotFound)
	}
	return f, fi, nil
}

// Put implements storage.Storage. The body is streamed to a temporary file
// next to the object and renamed into place, so readers never see a partial
// object.
func (s *Store) Put(ctx context.Context, bucket, p string, r io.Reader, size int64, contentType string) error {
	root, p, err := s.object(bucket, p)
	if err != nil {
		return err
	}
	if err := storage.CheckSize(bucket, size); err != nil {
		return err
	}
	if _, err := s.write(ctx, root, p, io.LimitReader(r, size+1), size, writeOpts{}); err != nil {
		if mapped := mapErr("put", bucket, p, err); errors.Is(mapped, storage.ErrInvalidPath) {
			return mapped
		}
		return fmt.Errorf("put %s/%s: %w", bucket, p, err)
	}
	return nil
}

// errShort reports a body shorter than its declared size.
var errShort = errors.New("body shorter than its declared size")

// errExists reports a create-only write to an existing object.
var errExists = errors.New("the object already exists and cannot be replaced")

// writeOpts tune write.
type writeOpts struct {
	allowShort bool         // fewer than max bytes is fine (signed uploads)
	createOnly bool         // refuse (errExists) to replace an existing object
	guard      func() error // asked just before the object is put in place
}

// write streams r into root/p through a temporary file. More than max
// bytes yields storage.ErrTooLarge; unless o.allowShort, fewer than max
// bytes yields errShort. Nothing is left behind on error.
func (s *Store) write(ctx context.Context, root *os.Root, p string, r io.Reader, max int64, o writeOpts) (n int64, err error) {
	dir := pathpkg.Dir(p)
	if dir != "." {
		if err := root.MkdirAll(dir, 0o750); err != nil {
			return 0, err
		}
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	tmp := pathpkg.Join(dir, tempPrefix+hex.EncodeToString(rnd[:])+".tmp")
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	buf := make([]byte, 256<<10)
	n, err = io.CopyBuffer(onlyWriter{f}, ctxReader{ctx, r}, buf)
	if err != nil {
		return n, err
	}
	if n > max {
		return n, fmt.Errorf("%w: more than %d bytes", storage.ErrTooLarge, max)
	}
	if n < max && !o.allowShort {
		return n, fmt.Errorf("%w: got %d of %d bytes", errShort, n, max)
	}
	if err = f.Sync(); err != nil {
		return n, err
	}
	if err = f.Close(); err != nil {
		return n, err
	}
	return n, s.commit(root, tmp, p, o)
}

// commit moves a finished temporary file into place, under commitMu.
func (s *Store) commit(root *os.Root, tmp, p string, o writeOpts) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if o.guard != nil {
		if err := o.guard(); err != nil {
			return &guardError{err}
		}
	}
	if !o.createOnly {
		return root.Rename(tmp, p)
	}
	// A hard link fails atomically when p exists, even across processes.
	if err := root.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errExists
		}
		return err
	}
	root.Remove(tmp)
	return nil
}

// onlyWriter hides *os.File's ReadFrom so CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, &readError{err}
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// readError marks a failure to read the body (as opposed to a disk error).
type readError struct{ err error }

func (e *readError) Error() string { return "reading body: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// Delete implements storage.Storage; deleting a missing object succeeds.
// Emptied directories are left in place.
func (s *Store) Delete(ctx context.Context, bucket, p string) error {
	root, p, err := s.object(bucket, p)
	if err != nil {
		return err
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	fi, err := root.Lstat(p)
	if err != nil {
		if err := mapErr("delete", bucket, p, err); errors.Is(err, storage.ErrNotFound) {
			return nil
		} else {
			return err
		}
	}
	if fi.IsDir() {
		return nil // not an object
	}
	if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapErr("delete", bucket, p, err)
	}
	return nil
}

// SweepTemp removes in-progress upload files (left behind when the server
// crashed mid-upload) whose modification time is older than olderThan
// before the store's clock, in every bucket. Uploads still in progress keep
// writing to their file, so a generous age (an hour) never touches them.
func (s *Store) SweepTemp(olderThan time.Duration) (removed int, err error) {
	cutoff := s.now().Add(-olderThan)
	for _, b := range storage.Buckets() {
		root := s.roots[b]
		werr := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking
				}
				return err
			}
			if d.IsDir() || !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tempPrefix) || !strings.HasSuffix(d.Name(), ".tmp") {
				return nil
			}
			fi, err := d.Info()
			if err != nil || !fi.ModTime().Before(cutoff) {
				return nil
			}
			if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
			return nil
		})
		if werr != nil {
			err = errors.Join(err, fmt.Errorf("local storage: sweep %s: %w", b, werr))
		}
	}
	return removed, err
}
