package edge

import (
	"net/http"
)

// DiskSpace is the free-disk watermark writes are checked against
// (*diskspace.Guard in production). Check returns nil when a write may
// go on, else why not; it is called once per write request, from the
// request's goroutine, and must be cheap and safe for concurrent use.
type DiskSpace interface {
	Check() error
}

// withFreeDisk refuses a write with 507 insufficient_storage while the
// node's disk is below its watermark, before the body is read. It wraps
// the routes that store new data (POST /chat, PUT /cache/…) and no others:
// reads and deletes go on, deletes being how room comes back.
func (s *server) withFreeDisk(next http.Handler) http.Handler {
	if s.cfg.Disk == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.cfg.Disk.Check(); err != nil {
			refuseBeforeBody(w, r)
			writeError(w, http.StatusInsufficientStorage, CodeInsufficientStorage,
				"this node is low on disk space and takes no new writes; reads and deletes still work")
			return
		}
		next.ServeHTTP(w, r)
	})
}
