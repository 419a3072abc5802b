package badgerstore

// Hooks into Store for the external tests in store_test.go.

// OpenWithGCHook is Open with afterGC called after every GC
// round, so a test can wait for the loop to run instead of sleeping.
func OpenWithGCHook(opts Options, afterGC func()) (*Store, error) {
	opts.afterGC = afterGC
	return Open(opts)
}

// GCLoopDone is closed once the GC loop has returned.
func (s *Store) GCLoopDone() <-chan struct{} { return s.gcDone }

// SetBatchLimits shrinks the store's transaction bounds so a test reaches
// the batch boundaries with little data. Call it before using the store.
func (s *Store) SetBatchLimits(deleteBatch, trimPerAppend, sweepScanChunk int) {
	s.limits = batchLimits{
		deleteBatch:    deleteBatch,
		trimPerAppend:  uint64(trimPerAppend),
		sweepScanChunk: sweepScanChunk,
	}
}

// SetAppendRaced makes f run inside every Append transaction, after its
// LastSeq check and before its commit. Call it before using the store.
func (s *Store) SetAppendRaced(f func()) { s.appendRaced = f }
