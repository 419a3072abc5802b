package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/parley-chat/parley/actors/model"
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
	if rl.TokensPerMinute > 0 && r.Method == http.MethodPost && r.URL.Path == "/chat" {
		// One token: refused once the minute's tokens are spent. The
		// reply's usage is charged when it ends (ChargeTokens).
		checks = append(checks, tokensCheck(t, 1))
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

func tokensCheck(t *tenants.Tenant, cost int) ratelimit.ScopeCheck {
	return ratelimit.ScopeCheck{Scope: ratelimit.ScopeTokens, ID: t.ID, PerMinute: int64(t.RateLimit.TokensPerMinute),
		Cost: int32(min(cost, math.MaxInt32))}
}

// chargeTimeout bounds one charge of a reply's tokens.
const chargeTimeout = 2 * time.Second

// ChargeTokens returns session.Config.OnUsage for tenants' token limits:
// each reply's tokens (prompt and completion, as the provider reported
// them) are charged to its tenant's tokens scope when the reply ends,
// whether or not a client still listens — streamed, stopped and failed
// replies included. limiter returns the Limiter, nil while there is none
// yet (the node is starting). The charge runs on its own goroutine, bounded
// by chargeTimeout, so the session never waits for it; a charge that fails
// is logged and lost.
func ChargeTokens(reg *tenants.Registry, limiter func() *ratelimit.Limiter, logger *slog.Logger) func(tenant string, u model.Usage) {
	return func(tenant string, u model.Usage) {
		t, ok := reg.Tenant(tenant)
		l := limiter()
		used := u.PromptTokens + u.CompletionTokens
		if !ok || l == nil || t.RateLimit.TokensPerMinute == 0 || used <= 1 {
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), chargeTimeout)
			defer cancel()
			// The chat's own check spent one token already.
			if err := l.Charge(ctx, tenant, tokensCheck(t, used-1)); err != nil {
				logger.Warn("charging reply tokens", "tenant", tenant, "tokens", used, "err", err)
			}
		}()
	}
}
