package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// testModelExports: an export is created once per (model, format, type)
// with queued export work; asking again returns it (queued again only after
// a failure); agents claim it only for a format they declare; only the agent
// holding it finishes it; the owner alone sees it; a deleted export refuses
// its agent's result, frees its key, and its bytes count toward storage for
// the days it existed.
func testModelExports(t *testing.T, s store.Store) {
	u := NewUser(t, s, "exports@example.com")
	other := NewUser(t, s, "exports-other@example.com")
	d := NewDataset(t, s, u.ID, "export data")
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	m := NewModel(t, s, u.ID, d.ID, "exported", jobdoc.Quality{}, now)
	asU := store.WithUser(context.Background(), u.ID)
	asOther := store.WithUser(context.Background(), other.ID)
	create := func(format, dtype, gguf string, at time.Time) (store.ModelExport, bool) {
		t.Helper()
		e, queued, err := s.ModelExportCreate(sys, store.ModelExportCreateParams{ID: uuid.NewString(), WorkID: uuid.NewString(), UserID: u.ID, ModelID: m.ID,
			BaseModel: "org/base", Format: format, Dtype: dtype, GGUFType: gguf, At: at})
		if err != nil {
			t.Fatal(err)
		}
		return e, queued
	}
	merged, queued := create(store.ExportMerged, "bfloat16", "", now)
	if !queued || merged.Status != store.WorkQueued || merged.BaseModel != "org/base" || merged.ModelID != m.ID || !merged.CreatedAt.Equal(now) {
		t.Fatalf("create: %v %+v", queued, merged)
	}
	if again, queued := create(store.ExportMerged, "bfloat16", "", now.Add(time.Second)); queued || again.ID != merged.ID {
		t.Fatalf("asking again for a queued export must return it: %v %+v", queued, again)
	}
	gguf, _ := create(store.ExportGGUF, "", "q8_0", now.Add(2*time.Second))
	if gguf.ID == merged.ID {
		t.Fatal("another format is another export")
	}
	list, err := s.ModelExportList(asU, u.ID, m.ID)
	if err != nil || len(list) != 2 || list[0].ID != merged.ID || list[1].ID != gguf.ID {
		t.Fatalf("list: %v %+v", err, list)
	}
	if l, err := s.ModelExportList(asOther, other.ID, m.ID); err != nil || len(l) != 0 {
		t.Fatalf("another user listed %d exports (%v)", len(l), err)
	}
	if _, err := s.ModelExportGet(asOther, other.ID, m.ID, merged.ID); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("another user's get: %v", err)
	}

	a1, err := s.AgentCreate(sys, "exporter-1", "export-hash-1", now)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s.AgentCreate(sys, "exporter-2", "export-hash-2", now)
	if err != nil {
		t.Fatal(err)
	}
	claim := func(agent string, formats []string, at time.Time) (store.AgentWork, bool) {
		t.Helper()
		w, ok, err := s.AgentWorkClaim(sys, store.AgentWorkClaimParams{AgentID: agent, Kinds: []string{store.WorkExport}, ExportFormats: formats,
			Lease: time.Minute, MaxAttempts: 2, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return w, ok
	}
	// An agent without the GGUF converter takes the merged export only.
	w, ok := claim(a1.ID, []string{store.ExportMerged}, now.Add(time.Minute))
	if !ok || w.ID != merged.WorkID || w.Kind != store.WorkExport || w.BaseModel != "org/base" {
		t.Fatalf("claim merged: %v %+v", ok, w)
	}
	if w, ok := claim(a1.ID, []string{store.ExportMerged}, now.Add(time.Minute)); ok {
		t.Fatalf("a merged-only agent claimed %+v", w)
	}
	if e, err := s.ModelExportByWork(sys, w.ID); err != nil || e.ID != merged.ID || e.Status != store.WorkRunning || e.AgentName != "exporter-1" {
		t.Fatalf("by work: %v %+v", err, e)
	}
	fin := store.ModelExportFinishParams{WorkID: w.ID, AgentID: a2.ID, FileName: "exported-merged.tar.gz", StoragePath: u.ID + "/exports/x.tar.gz",
		SHA256: "ab", SizeBytes: 4096, At: now.Add(2 * time.Minute)}
	if err := s.ModelExportFinish(sys, fin); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("an agent not holding the work finished it: %v", err)
	}
	fin.AgentID = a1.ID
	if err := s.ModelExportFinish(sys, fin); err != nil {
		t.Fatal(err)
	}
	ready, err := s.ModelExportGet(asU, u.ID, m.ID, merged.ID)
	if err != nil || ready.Status != store.WorkCompleted || ready.SizeBytes != 4096 || ready.SHA256 != "ab" || ready.FileName != fin.FileName ||
		ready.StoragePath != fin.StoragePath || ready.ReadyAt == nil || !ready.ReadyAt.Equal(fin.At) {
		t.Fatalf("ready: %v %+v", err, ready)
	}
	if again, queued := create(store.ExportMerged, "bfloat16", "", now.Add(3*time.Minute)); queued || again.ID != merged.ID || again.Status != store.WorkCompleted {
		t.Fatalf("asking again for a ready export must return it: %v %+v", queued, again)
	}

	// The GGUF export fails; asking again queues the same export again.
	gw, ok := claim(a2.ID, nil, now.Add(4*time.Minute))
	if !ok || gw.ID != gguf.WorkID {
		t.Fatalf("claim gguf: %v %+v", ok, gw)
	}
	if err := s.AgentWorkFail(sys, store.AgentWorkFailParams{ID: gw.ID, AgentID: a2.ID, Error: "no converter", At: now.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	failed, _ := s.ModelExportGet(asU, u.ID, m.ID, gguf.ID)
	if failed.Status != store.WorkFailed || failed.Error != "no converter" || !failed.UpdatedAt.Equal(now.Add(5*time.Minute)) {
		t.Fatalf("failed: %+v", failed)
	}
	retried, queued := create(store.ExportGGUF, "", "q8_0", now.Add(6*time.Minute))
	if !queued || retried.ID != gguf.ID || retried.Status != store.WorkQueued || retried.Error != "" || retried.Attempts != 0 {
		t.Fatalf("retry: %v %+v", queued, retried)
	}

	// Deleting a running export fails its work: the agent's result is refused.
	gw, ok = claim(a2.ID, nil, now.Add(7*time.Minute))
	if !ok || gw.ID != gguf.WorkID {
		t.Fatalf("claim again: %v %+v", ok, gw)
	}
	if _, err := s.ModelExportDelete(sys, other.ID, m.ID, gguf.ID, now.Add(8*time.Minute)); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("another user deleted an export: %v", err)
	}
	if _, err := s.ModelExportDelete(sys, u.ID, m.ID, gguf.ID, now.Add(8*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ModelExportFinish(sys, store.ModelExportFinishParams{WorkID: gw.ID, AgentID: a2.ID, FileName: "x.gguf.tar.gz", StoragePath: "p", SHA256: "cd",
		SizeBytes: 10, At: now.Add(9 * time.Minute)}); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("finishing a deleted export: %v", err)
	}
	if _, err := s.ModelExportByWork(sys, gw.ID); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("a deleted export's work: %v", err)
	}
	if fresh, queued := create(store.ExportGGUF, "", "q8_0", now.Add(10*time.Minute)); !queued || fresh.ID == gguf.ID {
		t.Fatalf("a deleted export frees its key: %v %+v", queued, fresh)
	}

	// Storage: the ready export's bytes count as model bytes while it exists.
	bytesOn := func(day time.Time) int64 {
		t.Helper()
		usage, err := s.StorageUsageDuring(sys, day, day.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range usage {
			if x.UserID == u.ID {
				return x.ArtifactBytes
			}
		}
		return 0
	}
	day := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	if _, err := s.ModelExportDelete(sys, u.ID, m.ID, merged.ID, day.AddDate(0, 0, 1).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	base := bytesOn(day.AddDate(0, 0, 2)) // the adapter's files, after the export is gone
	if got := bytesOn(day); got != base+4096 {
		t.Fatalf("storage on the export's day: %d, want %d", got, base+4096)
	}
	if got := bytesOn(day.AddDate(0, 0, 1)); got != base+4096 {
		t.Fatalf("the deletion day still bills the export: %d, want %d", got, base+4096)
	}
	if l, _ := s.ModelExportList(asU, u.ID, m.ID); len(l) != 1 {
		t.Fatalf("deleted exports are not listed: %d", len(l))
	}
}
