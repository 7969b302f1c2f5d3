package store_test

import (
	"testing"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
)

func TestStore(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		storetest.Run(t, func(t testing.TB) store.Store { return e.Open(t) })
	})
}
