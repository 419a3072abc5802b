package edge

import "net/http"

// A dialect is the error body shape of a family of routes that follows
// someone else's contract: /v1/chat/completions answers errors the way
// OpenAI does, not with ErrorBody. The statuses, codes and messages are
// still the edge's one error map's (errors.go); only the body differs.
type dialect func(status int, info ErrorInfo, traceID string) any

// dialectWriter carries its routes' dialect to writeError, which is given
// only the ResponseWriter, so that the middleware of the group (auth,
// limits, body bounds) answers in the routes' shape too.
type dialectWriter struct {
	http.ResponseWriter
	body dialect
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (d *dialectWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// withDialect makes every error answered below it take body's shape. It
// goes first in its group, before the middleware that can refuse.
func withDialect(body dialect) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&dialectWriter{ResponseWriter: w, body: body}, r)
		})
	}
}
