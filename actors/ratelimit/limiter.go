package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/cluster"
)

// UnavailablePolicy says what a Limiter does about a scope whose limiter
// cannot be reached in time (the tenants file's onLimiterUnavailable).
type UnavailablePolicy string

// The policies.
const (
	// PolicyOpen, the default, treats an unreachable limiter as allowing:
	// a limiter outage never becomes a chat outage.
	PolicyOpen UnavailablePolicy = "open"
	// PolicyClosed treats an unreachable limiter as refusing, with a
	// Retry-After of one second (ClosedRetryAfter).
	PolicyClosed UnavailablePolicy = "closed"
)

// Valid reports whether p is a policy; "" counts as PolicyOpen.
func (p UnavailablePolicy) Valid() bool { return p == "" || p == PolicyOpen || p == PolicyClosed }

// ClosedRetryAfter is the Retry-After of a refusal made by PolicyClosed.
const ClosedRetryAfter = time.Second

// ScopeCheck is one scope a request is checked against.
type ScopeCheck struct {
	// Scope and ID name the limiter (see Identity).
	Scope Scope
	ID    string
	// PerMinute and Burst are this scope's limits for the request's
	// tenant, as in Limits: PerMinute 1..MaxLimit is required, Burst 0
	// means none.
	PerMinute int64
	Burst     int64
	// Cost is the number of units the request spends; 0 means 1.
	Cost int32
}

// limits is the check's limits as the grain takes them.
func (c ScopeCheck) limits() *Limits { return &Limits{PerMinute: c.PerMinute, Burst: c.Burst} }

// Result is a Limiter's answer for one request.
type Result struct {
	// Allowed is true when every scope allowed the request (or could not
	// be reached and the policy is open).
	Allowed bool
	// Refused is the scope whose limit refused the request ("" when
	// allowed). When several refused, it is the one with the longest
	// RetryAfter.
	Refused Scope
	// Limit, Remaining, ResetAt and RetryAfter describe the most
	// restrictive applicable limit, for the X-RateLimit-* and Retry-After
	// headers: when allowed, the scope with the least remaining (ties: the
	// smaller limit, then the earlier check); when refused, the Refused
	// scope. Limit is 0 when no scope answered (every limiter was
	// unreachable under PolicyOpen, or there were no checks): nothing is
	// known, so the headers are left out. RetryAfter is 0 when allowed.
	Limit      int64
	Remaining  int64
	ResetAt    time.Time
	RetryAfter time.Duration
	// Unavailable lists the scopes whose limiter could not be reached in
	// time, in check order.
	Unavailable []Scope
}

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Timeout bounds a Check: every scope is asked at once, and a scope
	// that has not answered by then is unavailable. It bounds the refunds
	// of a refused request too. Default 50 ms (the seed's P95 budget for a
	// rate limit check).
	Timeout time.Duration
	// Observer is told every decision and every unreachable scope; none
	// when nil.
	Observer Observer
	// Clock dates the refusals PolicyClosed makes and the deny cache's
	// entries; clock.Real when nil.
	Clock clock.Clock
	// DenyCacheSize bounds how many refusals the Limiter remembers, to
	// refuse again without asking their grains (denycache.go). Default
	// 10,000 (about a megabyte); negative turns the cache off.
	DenyCacheSize int
	// Logger receives failed refunds; discarded when nil.
	Logger *slog.Logger
}

// DefaultLimiterConfig returns the defaults.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{Timeout: 50 * time.Millisecond, Observer: noObserver{}, Clock: clock.Real, DenyCacheSize: 10_000}
}

// Validate names the first invalid field.
func (c LimiterConfig) Validate() error {
	if c.Timeout < 0 {
		return errors.New("ratelimit limiter config: Timeout is negative")
	}
	return nil
}

// Limiter checks a request against every applicable scope. It is safe for
// concurrent use.
type Limiter struct {
	r      grains.Requester
	cfg    LimiterConfig
	denied *denyCache
}

// NewLimiter returns a Limiter asking its grains through r (a
// *cluster.Node in production).
func NewLimiter(r grains.Requester, cfg LimiterConfig) (*Limiter, error) {
	if r == nil {
		return nil, errors.New("ratelimit: NewLimiter: Requester is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := DefaultLimiterConfig()
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.Observer == nil {
		cfg.Observer = d.Observer
	}
	if cfg.Clock == nil {
		cfg.Clock = d.Clock
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DenyCacheSize == 0 {
		cfg.DenyCacheSize = d.DenyCacheSize
	}
	return &Limiter{r: r, cfg: cfg, denied: newDenyCache(cfg.DenyCacheSize)}, nil
}

// answer is one scope's outcome.
type answer struct {
	decision *Decision // nil when the scope is unavailable or refused the request as malformed
	invalid  error     // the grain refused the request as malformed
	err      error     // the scope could not be reached
}

// Check asks every scope in checks at once, under one Timeout, and allows
// the request only if all allow. Scopes that cannot be reached in time are
// listed in Result.Unavailable and treated as policy says ("" is
// PolicyOpen).
//
// A scope that allows a request counts it. When another scope refuses the
// same request, Check refunds the scopes that allowed it (a Refund of the
// same cost), so a refused request consumes nothing anywhere. A refund is
// sent once, within Timeout, and never retried: a refund that fails leaves
// the request counted, erring towards limiting. Likewise a scope that timed
// out may have counted the request; it is not refunded.
//
// A request that meets a refusal this Limiter was given earlier and that
// still holds is refused at once, asking no grain and counting nothing
// (denycache.go).
//
// Check fails, without asking anyone, with ErrBadIdentity or ErrBadRequest
// when a check is malformed, and with ctx's error when ctx was cancelled.
func (l *Limiter) Check(ctx context.Context, tenant string, checks []ScopeCheck, policy UnavailablePolicy) (Result, error) {
	if !policy.Valid() {
		return Result{}, fmt.Errorf("%w: unavailable policy %q is not open or closed", ErrBadRequest, policy)
	}
	identities := make([]string, len(checks))
	for i, c := range checks {
		id, err := Identity(tenant, c.Scope, c.ID)
		if err != nil {
			return Result{}, err
		}
		if _, err := checkRequest(c.Cost, c.limits(), false); err != nil {
			return Result{}, fmt.Errorf("%s scope: %w", c.Scope, err)
		}
		identities[i] = id
	}
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return Result{}, err
	}
	if res, ok := l.stillRefused(checks, identities); ok {
		return res, nil
	}
	answers := l.fanOut(ctx, identities, func(i int) any {
		return &Check{Cost: checks[i].Cost, Limits: checks[i].limits()}
	})
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		l.refundAllowed(ctx, checks, identities, answers)
		return Result{}, err
	}
	for i, a := range answers {
		if a.invalid != nil {
			l.refundAllowed(ctx, checks, identities, answers)
			return Result{}, fmt.Errorf("%s scope: %w", checks[i].Scope, a.invalid)
		}
	}

	res := Result{Allowed: true}
	best := -1 // the check whose decision the result shows
	decisions := make([]*Decision, len(checks))
	for i, a := range answers {
		scope := checks[i].Scope
		d := a.decision
		if d == nil {
			l.cfg.Observer.Unavailable(scope)
			res.Unavailable = append(res.Unavailable, scope)
			if policy != PolicyClosed {
				continue
			}
			d = l.closedRefusal(checks[i].limits())
		} else {
			l.cfg.Observer.Decision(scope, d.Allowed)
			if !d.Allowed {
				l.remember(checks[i], identities[i], d)
			}
		}
		decisions[i] = d
		if best < 0 || moreRestrictive(d, decisions[best]) {
			best = i
		}
	}
	if best >= 0 {
		d := decisions[best]
		res.Allowed = d.Allowed
		res.Limit, res.Remaining = d.Limit, d.Remaining
		res.ResetAt = time.Unix(d.ResetAtUnix, 0)
		res.RetryAfter = time.Duration(d.RetryAfterMillis) * time.Millisecond
		if !d.Allowed {
			res.Refused = checks[best].Scope
			l.refundAllowed(ctx, checks, identities, answers)
		}
	}
	return res, nil
}

// stillRefused returns the refusal of the first remembered denial the
// checks meet, the longest one when several do.
func (l *Limiter) stillRefused(checks []ScopeCheck, identities []string) (Result, bool) {
	now := l.cfg.Clock.Now()
	var (
		res   Result
		found bool
	)
	for i, c := range checks {
		d, ok := l.denied.lookup(identities[i], max(c.Cost, 1), c.limits(), now)
		if !ok || found && d.until.Sub(now) <= res.RetryAfter {
			continue
		}
		found = true
		res = Result{Refused: c.Scope, Limit: d.perMinute, ResetAt: d.resetAt, RetryAfter: d.until.Sub(now)}
	}
	if found {
		l.cfg.Observer.Decision(res.Refused, false)
	}
	return res, found
}

// remember keeps a grain's refusal d of check c in the deny cache.
func (l *Limiter) remember(c ScopeCheck, identity string, d *Decision) {
	now := l.cfg.Clock.Now()
	l.denied.remember(identity, denial{
		until:     now.Add(time.Duration(d.RetryAfterMillis) * time.Millisecond),
		resetAt:   time.Unix(d.ResetAtUnix, 0),
		cost:      max(c.Cost, 1),
		perMinute: c.PerMinute,
		burst:     c.Burst,
	}, now)
}

// moreRestrictive reports whether decision a should be shown rather than
// b: a refusal over an allowance; between refusals the longer wait (the
// client must wait for all of them); between allowances the fewer
// remaining, then the smaller limit.
func moreRestrictive(a, b *Decision) bool {
	switch {
	case a.Allowed != b.Allowed:
		return !a.Allowed
	case !a.Allowed:
		return a.RetryAfterMillis > b.RetryAfterMillis
	case a.Remaining != b.Remaining:
		return a.Remaining < b.Remaining
	}
	return a.Limit < b.Limit
}

// closedRefusal is the decision PolicyClosed makes for an unreachable scope.
func (l *Limiter) closedRefusal(limits *Limits) *Decision {
	retryAt := l.cfg.Clock.Now().Add(ClosedRetryAfter)
	return &Decision{
		Limit:            limits.PerMinute,
		ResetAtUnix:      ceilDiv(retryAt.UnixMicro(), second),
		RetryAfterMillis: ClosedRetryAfter.Milliseconds(),
	}
}

// refundAllowed gives back what the scopes that allowed a refused request
// counted, at once and within Timeout, even when ctx was cancelled.
func (l *Limiter) refundAllowed(ctx context.Context, checks []ScopeCheck, identities []string, answers []answer) {
	var idx []int
	for i, a := range answers {
		if a.decision != nil && a.decision.Allowed {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	ids := make([]string, len(idx))
	for j, i := range idx {
		ids[j] = identities[i]
	}
	refunds := l.fanOut(context.WithoutCancel(ctx), ids, func(j int) any {
		return &Refund{Cost: checks[idx[j]].Cost}
	})
	for j, a := range refunds {
		if a.err != nil || a.invalid != nil {
			l.cfg.Logger.Warn("rate limit refund failed; the request stays counted",
				"scope", checks[idx[j]].Scope, "err", errors.Join(a.err, a.invalid))
		}
	}
}

// fanOut sends msg(i) to every identity at once and collects the answers
// until Timeout. It returns at the deadline even if the Requester does not:
// a late answer lands in the buffered channel and is dropped.
func (l *Limiter) fanOut(ctx context.Context, identities []string, msg func(i int) any) []answer {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	type indexed struct {
		i int
		a answer
	}
	results := make(chan indexed, len(identities))
	for i, id := range identities {
		m := msg(i)
		go func() { results <- indexed{i, l.ask(ctx, id, m)} }()
	}
	answers := make([]answer, len(identities))
	for i := range answers {
		answers[i].err = fmt.Errorf("%w: no answer within %s", cluster.ErrTimeout, l.cfg.Timeout)
	}
	for range identities {
		select {
		case r := <-results:
			answers[r.i] = r.a
		case <-ctx.Done():
			return answers
		}
	}
	return answers
}

// ask sends one message and sorts its answer out.
func (l *Limiter) ask(ctx context.Context, identity string, msg any) answer {
	res, err := l.r.Request(ctx, identity, Kind, msg)
	if err != nil {
		return answer{err: err}
	}
	switch res := res.(type) {
	case *Decision:
		if _, ok := msg.(*Check); ok {
			return answer{decision: res}
		}
	case *Refunded:
		if _, ok := msg.(*Refund); ok {
			return answer{}
		}
	case *grains.Failure:
		err := grains.Failed(res)
		if errors.Is(err, grains.ErrInvalidArgument) {
			return answer{invalid: fmt.Errorf("%w: %s", ErrBadRequest, res.Message)}
		}
		return answer{err: fmt.Errorf("rate limiter %s: %w", res.Code, err)}
	}
	return answer{err: fmt.Errorf("rate limiter answered %T to %T", res, msg)}
}
