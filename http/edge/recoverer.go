package edge

import (
	"log/slog"
	"net/http"
	"runtime/debug"
)

// withRecover turns a panic in a handler into a 500 with the trace id, and
// logs the stack. http.ErrAbortHandler is re-panicked: it is how a handler
// asks net/http to drop the connection.
func withRecover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				rec := recover()
				if rec == nil {
					return
				}
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				logger.Error("handler panicked", "traceId", w.Header().Get(HeaderTraceID), "method", r.Method, "path", r.URL.Path, "panic", rec, "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, CodeInternal, "internal error; quote the trace id when reporting it")
			}()
			next.ServeHTTP(w, r)
		})
	}
}
