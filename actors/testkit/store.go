package testkit

import (
	"testing"

	"github.com/parley-chat/parley/persistence/badgerstore"
)

// OpenStore opens a badgerstore.Store for a test, in memory when dir is "" and
// on disk in dir otherwise, with the test's logger, and closes it when the
// test ends. Open it before starting a cluster that uses it: cleanups run
// last-in first-out, so the store then closes after the nodes have stopped
// (and their grains have written what they hold).
func OpenStore(t testing.TB, dir string) *badgerstore.Store {
	t.Helper()
	store, err := badgerstore.Open(badgerstore.Options{Dir: dir, InMemory: dir == "", Logger: NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}
