package models_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/models"
	"github.com/brightrun/brightrun/internal/storage/local"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
)

// TestRequestExportRules: a bad format, dtype or GGUF type is a 400 naming
// the field; an unknown model and another user's model are 404; a model
// without a finished adapter is a clear 409; asking twice returns the same
// export (queued only the first time); a download before it is ready is a
// 409; another user cannot list, download or delete it.
func TestRequestExportRules(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		st := e.Open(t)
		ctx := context.Background()
		now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
		files, err := local.New(local.Options{Root: t.TempDir(), Secret: []byte("0123456789abcdef0123"), BaseURL: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		svc := &models.Service{Store: st, Storage: files, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
		u := storetest.NewUser(t, st, "export-rules@example.com")
		other := storetest.NewUser(t, st, "export-rules-other@example.com")
		d := storetest.NewDataset(t, st, u.ID, "rules data")
		m := storetest.NewModelWith(t, st, u.ID, d.ID, store.ArtifactCreateParams{Name: "rules · v1", Artifacts: jobdoc.Artifacts{Files: []jobdoc.File{
			{Name: "adapter_config.json", Size: 10, StoragePath: u.ID + "/x/adapter/adapter_config.json"},
			{Name: "adapter_model.safetensors", Size: 20, StoragePath: u.ID + "/x/adapter/adapter_model.safetensors"}}}}, now)
		bare := storetest.NewModel(t, st, u.ID, d.ID, "no adapter", jobdoc.Quality{}, now)
		asU := store.WithUser(ctx, u.ID)
		asOther := store.WithUser(ctx, other.ID)

		for _, c := range []struct {
			req   models.ExportRequest
			field string
		}{
			{models.ExportRequest{}, "format"},
			{models.ExportRequest{Format: "onnx"}, "format"},
			{models.ExportRequest{Format: "merged", Dtype: "int4"}, "dtype"},
			{models.ExportRequest{Format: "merged", GGUFType: "q8_0"}, "gguf_type"},
			{models.ExportRequest{Format: "gguf", GGUFType: "q4_k_m"}, "gguf_type"},
			{models.ExportRequest{Format: "gguf", Dtype: "float16"}, "dtype"},
		} {
			_, _, err := svc.RequestExport(asU, u.ID, m.ID, c.req)
			var ae *apperr.Error
			if !apperr.Is(err, apperr.KindValidation) || !asErr(err, &ae) || !strings.Contains(fieldsOf(ae), c.field) {
				t.Errorf("%+v: %v, want a 400 naming %s", c.req, err, c.field)
			}
		}
		ok := models.ExportRequest{Format: "merged"}
		if _, _, err := svc.RequestExport(asU, u.ID, "00000000-0000-4000-8000-000000000000", ok); !apperr.Is(err, apperr.KindNotFound) {
			t.Errorf("unknown model: %v", err)
		}
		if _, _, err := svc.RequestExport(asOther, other.ID, m.ID, ok); !apperr.Is(err, apperr.KindNotFound) {
			t.Errorf("another user's model: %v", err)
		}
		if _, _, err := svc.RequestExport(asU, u.ID, bare.ID, ok); !apperr.Is(err, apperr.KindConflict) || !strings.Contains(err.Error(), "no finished adapter") {
			t.Errorf("a model without an adapter: %v", err)
		}
		x, queued, err := svc.RequestExport(asU, u.ID, m.ID, ok)
		if err != nil || !queued || x.Status != "queued" || x.Dtype != "bfloat16" || x.Label != "Merged model (safetensors, bfloat16)" {
			t.Fatalf("request: %v %v %+v", err, queued, x)
		}
		again, queued, err := svc.RequestExport(asU, u.ID, m.ID, ok)
		if err != nil || queued || again.ID != x.ID {
			t.Fatalf("asking again: %v %v %+v", err, queued, again)
		}
		g, _, err := svc.RequestExport(asU, u.ID, m.ID, models.ExportRequest{Format: "gguf"})
		if err != nil || g.GGUFType != "f16" || g.ID == x.ID {
			t.Fatalf("gguf: %v %+v", err, g)
		}
		if _, err := svc.ExportDownloadURL(asU, u.ID, m.ID, x.ID); !apperr.Is(err, apperr.KindConflict) {
			t.Errorf("download before ready: %v", err)
		}
		if l, err := svc.Exports(asU, u.ID, m.ID); err != nil || len(l) != 2 {
			t.Fatalf("list: %v %+v", err, l)
		}
		if _, err := svc.Exports(asOther, other.ID, m.ID); !apperr.Is(err, apperr.KindNotFound) {
			t.Errorf("another user's list: %v", err)
		}
		if _, err := svc.ExportDownloadURL(asOther, other.ID, m.ID, x.ID); !apperr.Is(err, apperr.KindNotFound) {
			t.Errorf("another user's download: %v", err)
		}
		if err := svc.DeleteExport(asOther, other.ID, m.ID, x.ID); !apperr.Is(err, apperr.KindNotFound) {
			t.Errorf("another user's delete: %v", err)
		}
		if err := svc.DeleteExport(asU, u.ID, m.ID, x.ID); err != nil {
			t.Fatal(err)
		}
		if l, _ := svc.Exports(asU, u.ID, m.ID); len(l) != 1 || l[0].ID != g.ID {
			t.Fatalf("after delete: %+v", l)
		}
	})
}

func asErr(err error, target **apperr.Error) bool {
	e, ok := err.(*apperr.Error)
	*target = e
	return ok
}

func fieldsOf(e *apperr.Error) string {
	var b strings.Builder
	if m, ok := e.Details.(map[string]string); ok {
		for k := range m {
			b.WriteString(k + " ")
		}
	}
	return b.String()
}
