package diskspace

import (
	"fmt"
	"sync"
	"syscall"
)

// Source reports the free and total bytes of one filesystem. Usage is
// called from any goroutine, once per write request, so it must be safe
// for concurrent use and cheap; it does not block.
type Source interface {
	Usage() (free, total uint64, err error)
}

// Statfs is the Source of the filesystem holding Dir: the bytes an
// unprivileged process may still write (f_bavail), of the filesystem's
// size.
type Statfs struct {
	Dir string
}

var _ Source = Statfs{}

// Usage implements Source with statfs(2).
func (s Statfs) Usage() (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.Dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", s.Dir, err)
	}
	bsize := uint64(st.Bsize)
	return st.Bavail * bsize, st.Blocks * bsize, nil
}

// Fixed is a Source that reports what it was last set to, for tests and
// for processes that cannot statfs. Safe for concurrent use.
type Fixed struct {
	mu          sync.Mutex
	free, total uint64
	err         error
}

var _ Source = (*Fixed)(nil)

// NewFixed returns a Fixed reporting free of total bytes.
func NewFixed(free, total uint64) *Fixed { return &Fixed{free: free, total: total} }

// Set makes Usage report free of total bytes, or err when it is not nil.
func (f *Fixed) Set(free, total uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free, f.total, f.err = free, total, err
}

// Usage implements Source.
func (f *Fixed) Usage() (free, total uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.free, f.total, f.err
}
