// Package storetest is the conformance suite of persistence.Store. Every
// implementation (persistence/badgerstore, persistence/raftstore) runs it
// from its own tests, so that grains can rely on the contract written in the
// persistence interfaces and not on one implementation's habits:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) persistence.Store { … })
//	}
//
// The cases are filed by what they cover: sessions.go (append, page,
// conflicts, caps, delete), concurrency.go (racing writers, sweeps and
// deletes during appends), keys.go (tenant isolation and key validation),
// kv.go, sweep.go, quota.go (quotas and usage) and lifecycle.go (cancelled contexts, a closed store);
// fixtures.go holds the inputs and the checks they share.
package storetest

import (
	"testing"

	"github.com/parley-chat/parley/persistence"
)

// Run runs the suite against stores made by open. open is called once per
// subtest and must return a new, empty store; Run closes it when the subtest
// ends (Close must be idempotent, so open may also register its own cleanup).
// Subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s persistence.Store)
	}{
		{"AppendMetaPage", testAppendMetaPage},
		{"RoundTrip", testRoundTrip},
		{"PageLimitClamp", testPageLimitClamp},
		{"SequenceConflict", testSequenceConflict},
		{"BadAppend", testBadAppend},
		{"ConcurrentAppendersOneWins", testConcurrentAppendersOneWins},
		{"ConcurrentAppendersRetry", testConcurrentAppendersRetry},
		{"MaxMessages", testMaxMessages},
		{"NotBefore", testNotBefore},
		{"DeleteSession", testDeleteSession},
		{"TenantIsolation", testTenantIsolation},
		{"InvalidKeys", testInvalidKeys},
		{"ValidKeyEdges", testValidKeyEdges},
		{"KV", testKV},
		{"KVExpiry", testKVExpiry},
		{"KVAndSessionsApart", testKVAndSessionsApart},
		{"Sweep", testSweep},
		{"SweepDuringAppends", testSweepDuringAppends},
		{"DeleteSessionDuringAppends", testDeleteSessionDuringAppends},
		{"QuotaCacheEntries", testQuotaCacheEntries},
		{"QuotaStoredBytes", testQuotaStoredBytes},
		{"QuotaSessions", testQuotaSessions},
		{"QuotaExpiryGivesRoomBack", testQuotaExpiryGivesRoomBack},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}
