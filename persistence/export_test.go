package persistence

// Hooks into BadgerStore for the external tests in badger_test.go.

// OpenBadgerWithGCHook is OpenBadger with afterGC called after every GC
// round, so a test can wait for the loop to run instead of sleeping.
func OpenBadgerWithGCHook(opts BadgerOptions, afterGC func()) (*BadgerStore, error) {
	opts.afterGC = afterGC
	return OpenBadger(opts)
}

// GCLoopDone is closed once the GC loop has returned.
func (s *BadgerStore) GCLoopDone() <-chan struct{} { return s.gcDone }

// SetBatchLimits shrinks the store's transaction bounds so a test reaches
// the batch boundaries with little data. Call it before using the store.
func (s *BadgerStore) SetBatchLimits(deleteBatch, trimPerAppend, sweepScanChunk int) {
	s.limits = batchLimits{
		deleteBatch:    deleteBatch,
		trimPerAppend:  uint64(trimPerAppend),
		sweepScanChunk: sweepScanChunk,
	}
}

// SetAppendRaced makes f run inside every Append transaction, after its
// LastSeq check and before its commit. Call it before using the store.
func (s *BadgerStore) SetAppendRaced(f func()) { s.appendRaced = f }
