package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store"
)

// testStorageUsageDuring: a window counts the objects that existed at some
// point in it (created before its end, not deleted before its start), not
// what is stored when the question is asked.
func testStorageUsageDuring(t *testing.T, s store.Store) {
	u := NewUser(t, s, "usage@example.com")
	asU := store.WithUser(context.Background(), u.ID)
	kept := NewDataset(t, s, u.ID, "kept") // 123 bytes each
	if _, err := s.DatasetStartValidation(asU, u.ID, kept.ID, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	gone := NewDataset(t, s, u.ID, "deleted in two days")
	if _, err := s.DatasetStartValidation(asU, u.ID, gone.ID, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	NewDataset(t, s, u.ID, "never uploaded") // still uploading: no object yet
	now := time.Now().UTC()
	if _, err := s.DatasetSoftDelete(asU, u.ID, gone.ID, now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	today := now.Truncate(24 * time.Hour)
	bytesOn := func(dayOffset int) int64 {
		t.Helper()
		from := today.AddDate(0, 0, dayOffset)
		usage, err := s.StorageUsageDuring(sys, from, from.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, x := range usage {
			if x.UserID == u.ID {
				n += x.DatasetBytes + x.ArtifactBytes
			}
		}
		return n
	}
	for _, c := range []struct {
		day  int
		want int64
	}{
		{-1, 0},  // before the datasets were created
		{0, 246}, // created today
		{1, 246}, // both stored all day
		{2, 246}, // deleted during the day: still billed for it
		{3, 123}, // the deleted one is gone
	} {
		if got := bytesOn(c.day); got != c.want {
			t.Errorf("day %+d: %d bytes, want %d", c.day, got, c.want)
		}
	}
}
