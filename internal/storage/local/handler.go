package local

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
)

// Handler serves signed URLs. Mount it at PathPrefix (default
// "/storage/v1/"), with or without http.StripPrefix:
//
//	mux.Handle("/storage/v1/", store.Handler())
//
// GET/HEAD on a GET-signed URL streams the object (ranges and conditional
// requests supported, always as an attachment); PUT on a PUT-signed URL
// streams the body into the object, refusing more than the signed maximum
// with 413. A write-once URL whose object exists is refused with 412, and
// an upload the bucket's UploadGuard refuses (closed by its issuer) with 403
// before any byte is stored. Anything else is 403 (bad, tampered or expired
// signature, wrong method), 400 (invalid path) or 404 (missing object). Errors are JSON
// {"error": "...", "details": {...}}; a successful PUT answers 200
// {"success": true, "data": {"size": N}}.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

type errorBody struct {
	Error   string         `json:"error"`
	Details map[string]any `json:"details,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Del("Content-Disposition")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string, details map[string]any) {
	writeJSON(w, status, errorBody{Error: msg, Details: details})
}

func (s *Store) setCORS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !s.origins[origin] {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Content-Disposition, ETag")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Range")
		h.Set("Access-Control-Max-Age", "600")
	}
}

// splitPath extracts bucket and object path from a request path, with or
// without the mount prefix.
func (s *Store) splitPath(p string) (bucket, object string, ok bool) {
	if rest, found := strings.CutPrefix(p, s.prefix+"/"); found {
		p = rest
	}
	p = strings.TrimPrefix(p, "/")
	bucket, object, ok = strings.Cut(p, "/")
	return bucket, object, ok
}

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Referrer-Policy", "no-referrer")
	s.setCORS(w, r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}

	bucket, p, ok := s.splitPath(r.URL.Path)
	if !ok || !storage.KnownBucket(bucket) {
		writeError(w, http.StatusNotFound, "unknown storage bucket", map[string]any{"bucket": bucket})
		return
	}
	if _, p2, err := s.object(bucket, p); err != nil {
		writeError(w, http.StatusBadRequest, "invalid object path", map[string]any{"reason": strings.TrimPrefix(err.Error(), "storage: ")})
		return
	} else {
		p = p2
	}
	g, err := s.verify(bucket, p, r.URL.Query())
	switch {
	case errors.Is(err, storage.ErrExpired):
		writeError(w, http.StatusForbidden, "this link has expired", map[string]any{"reason": "expired", "expired_at": g.Expires.UTC()})
		return
	case err != nil:
		writeError(w, http.StatusForbidden, "invalid signature", map[string]any{"reason": strings.TrimPrefix(err.Error(), "storage: ")})
		return
	}
	switch {
	case g.Method == http.MethodGet && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.serveGet(w, r, g)
	case g.Method == http.MethodPut && r.Method == http.MethodPut:
		s.servePut(w, r, g)
	default:
		writeError(w, http.StatusForbidden, "this link is not valid for "+r.Method, map[string]any{"reason": "method", "allowed": g.Method})
	}
}

func (s *Store) serveGet(w http.ResponseWriter, r *http.Request, g grant) {
	f, fi, err := s.openFile(g.Bucket, g.Path)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "object not found", map[string]any{"path": g.Path})
		return
	case errors.Is(err, storage.ErrInvalidPath):
		writeError(w, http.StatusBadRequest, "invalid object path", nil)
		return
	case err != nil:
		s.log.Error("local storage: open", "bucket", g.Bucket, "path", g.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the object", nil)
		return
	}
	defer f.Close()
	info := infoOf(g.Path, fi)
	h := w.Header()
	h.Set("Content-Type", info.ContentType)
	h.Set("ETag", info.ETag)
	// Always an attachment with a sandbox CSP: user uploads are served from
	// the application's origin and must never render as active content.
	h.Set("Content-Disposition", storage.ContentDisposition(g.DownloadName))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "private, max-age=0, must-revalidate")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(transferTime(fi.Size())))
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func (s *Store) servePut(w http.ResponseWriter, r *http.Request, g grant) {
	max := g.MaxSize
	if bm := storage.MaxObjectSize(g.Bucket); max > bm {
		max = bm
	}
	tooLarge := func() {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, "upload exceeds its declared size",
			map[string]any{"max_size": max})
	}
	if r.ContentLength > max {
		tooLarge()
		return
	}
	// The issuer may have closed the upload (dataset confirmed or deleted):
	// ask before reading a byte, and again just before the object is put
	// in place.
	guard := func() error { return s.checkGuard(r.Context(), g.Bucket, g.Path) }
	if err := guard(); err != nil {
		s.refuseClosed(w, g, err)
		return
	}
	if g.CreateOnly {
		if _, err := s.roots[g.Bucket].Lstat(g.Path); err == nil {
			writeExists(w, g)
			return
		}
	}
	// The server's read timeout is sized for API requests; give an upload
	// time proportional to its size (at least 256 KiB/s) instead.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(transferTime(max)))
	root := s.roots[g.Bucket]
	body := http.MaxBytesReader(w, r.Body, max)
	n, err := s.write(r.Context(), root, g.Path, body, max, writeOpts{allowShort: true, createOnly: g.CreateOnly, guard: guard})
	var mbe *http.MaxBytesError
	var ge *guardError
	switch {
	case errors.As(err, &mbe):
		tooLarge()
		return
	case errors.As(err, &ge):
		s.refuseClosed(w, g, ge.err)
		return
	case errors.Is(err, errExists):
		writeExists(w, g)
		return
	case err != nil && errors.Is(mapErr("upload", g.Bucket, g.Path, err), storage.ErrInvalidPath):
		writeError(w, http.StatusBadRequest, "invalid object path", map[string]any{"reason": "the path resolves outside its bucket"})
		return
	case err != nil && r.Context().Err() != nil:
		return // client went away; the temp file is already gone
	case err != nil:
		var re *readError
		if errors.As(err, &re) {
			writeError(w, http.StatusBadRequest, "upload interrupted", nil)
			return
		}
		s.log.Error("local storage: upload", "bucket", g.Bucket, "path", g.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "could not store the upload", nil)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"size": n}})
}

// guardError marks a refusal by the upload guard at commit time.
type guardError struct{ err error }

func (e *guardError) Error() string { return e.err.Error() }

// refuseClosed answers an upload the guard refused (403) or could not
// decide on (503).
func (s *Store) refuseClosed(w http.ResponseWriter, g grant, err error) {
	w.Header().Set("Connection", "close")
	if errors.Is(err, storage.ErrUploadClosed) {
		writeError(w, http.StatusForbidden, strings.TrimPrefix(err.Error(), "storage: "), map[string]any{"reason": "closed"})
		return
	}
	s.log.Error("local storage: upload guard", "bucket", g.Bucket, "path", g.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "could not check whether this upload is still open; try again", nil)
}

// writeExists answers a write-once upload whose object already exists.
func writeExists(w http.ResponseWriter, g grant) {
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusPreconditionFailed, "this upload link was already used: the object exists and cannot be replaced",
		map[string]any{"reason": "exists", "path": g.Path})
}

// transferTime is the time allowed to move n bytes: 10 minutes plus n at
// 256 KiB/s.
func transferTime(n int64) time.Duration {
	return 10*time.Minute + time.Duration(n/(256<<10))*time.Second
}
