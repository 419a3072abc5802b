package edge

import (
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/tenants"
)

// maxUserIDBytes bounds X-User-Id, the rate-limit "user" a client names.
const maxUserIDBytes = 256

// scopeLimiter is the edge's RateLimiter: every request is checked against
// its tenant's, its user's and its client IP's limiter at once
// (docs/rate-limiting.md).
type scopeLimiter struct {
	limiter *ratelimit.Limiter
}

// NewRateLimiter returns the RateLimiter the edge uses in production. The
// ip scope counts under the client address RealIP found.
func NewRateLimiter(l *ratelimit.Limiter) RateLimiter {
	return &scopeLimiter{limiter: l}
}

// Check implements RateLimiter.
func (s *scopeLimiter) Check(r *http.Request, t *tenants.Tenant, keyID string) (RateDecision, error) {
	user := keyID
	if v := r.Header.Get("X-User-Id"); v != "" {
		if len(v) > maxUserIDBytes || !utf8.ValidString(v) {
			return RateDecision{}, &requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid headers",
				details: []ErrorDetail{{Field: "X-User-Id", Message: "must be 1 to 256 bytes of UTF-8"}}}
		}
		user = v
	}
	ip := ClientIP(r.Context())
	rl := t.RateLimit
	checks := []ratelimit.ScopeCheck{
		{Scope: ratelimit.ScopeTenant, ID: t.ID, PerMinute: int64(rl.PerMinute), Burst: int64(rl.Burst)},
		{Scope: ratelimit.ScopeUser, ID: user, PerMinute: int64(rl.User.PerMinute)},
		{Scope: ratelimit.ScopeIP, ID: ratelimit.IPKey(ip), PerMinute: int64(rl.IP.PerMinute)},
	}
	res, err := s.limiter.Check(r.Context(), t.ID, checks, ratelimit.UnavailablePolicy(rl.OnLimiterUnavailable))
	switch {
	case errors.Is(err, ratelimit.ErrBadIdentity):
		return RateDecision{}, err // the client's X-User-Id: a 400
	case err != nil:
		return RateDecision{}, fmt.Errorf("%w: %w", errLimiterUnavailable, err)
	}
	var unavailable []string
	for _, scope := range res.Unavailable {
		unavailable = append(unavailable, string(scope))
	}
	return RateDecision{
		Unavailable: unavailable,
		Allowed:     res.Allowed,
		Scope:       string(res.Refused),
		Limit:       res.Limit,
		Remaining:   res.Remaining,
		Reset:       res.ResetAt,
		RetryAfter:  res.RetryAfter,
	}, nil
}
