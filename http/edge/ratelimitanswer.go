package edge

import (
	"net/http"
	"strconv"
	"time"
)

// WriteRateLimitAnswer writes what the edge answers for decision d, the
// one place these answers are made (docs/rate-limiting.md, "Decisions and
// the headers"): the X-RateLimit-Limit, -Remaining and -Reset headers,
// left out when d.Limit is 0 (no limiter answered, so nothing is known),
// and, when d refused the request, the 429 with Retry-After and the
// contract's error body. It reports whether the request may go on; after
// false the response is written. Exported so that a reference server (the
// benchmark's floor) answers exactly as the edge does.
func WriteRateLimitAnswer(w http.ResponseWriter, r *http.Request, d RateDecision) (allowed bool) {
	if d.Limit > 0 {
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.FormatInt(d.Limit, 10))
		h.Set("X-RateLimit-Remaining", strconv.FormatInt(d.Remaining, 10))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
	}
	if d.Allowed {
		return true
	}
	refuseBeforeBody(w, r)
	rateLimitedAnswer(&rateLimited{scope: d.Scope, retryAfter: d.RetryAfter}).write(w)
	return false
}

// rateLimitedAnswer is the answer to a request a rate limit refused: 429,
// and a Retry-After of at least a second.
func rateLimitedAnswer(e *rateLimited) *requestError {
	return &requestError{status: http.StatusTooManyRequests, code: CodeRateLimited, message: e.Error(), retryAfter: max(e.retryAfter, time.Second)}
}
