package edge

import (
	"net/http"
	"time"
)

// withBodyDeadline gives a request's body BodyReadTimeout to arrive, from
// the moment its headers are in: a client that declares a body and sends
// it slowly (or never) gets 408 and its connection closed instead of
// holding a connection and a goroutine. net/http clears the deadline
// itself once the body has been read to its end (it then watches the
// connection for the client going away), so a stream that outlives the
// deadline is not cut; no write deadline is set, and streams last as long
// as their reply.
//
// It needs the real connection under w (http.ResponseController), so it
// runs outside anything that wraps the writer without Unwrap.
func (s *server) withBodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			// An error means no connection to bound (a test recorder).
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout))
		}
		next.ServeHTTP(w, r)
	})
}
