package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
)

// fakeRequester plays cluster.Node for a Limiter: it activates real
// RateLimiter grains on the env's actor system, one per identity, and can
// make a scope unreachable in three ways.
type fakeRequester struct {
	e     *env
	calls atomic.Int64

	mu     sync.Mutex
	pids   map[string]*actor.PID
	broken map[ratelimit.Scope]breakage
	hung   chan struct{} // closed when the test ends
}

type breakage int

const (
	working   breakage = iota
	timingOut          // fails as cluster.Node.Request does when its deadline passes
	storeDown          // the grain answers grains.Failure{unavailable}
	hanging            // never returns until the test ends, whatever ctx says
)

var _ grains.Requester = (*fakeRequester)(nil)

func newFakeRequester(e *env) *fakeRequester {
	r := &fakeRequester{e: e, pids: map[string]*actor.PID{}, broken: map[ratelimit.Scope]breakage{}, hung: make(chan struct{})}
	e.t.Cleanup(func() { close(r.hung) })
	return r
}

func (r *fakeRequester) breakScope(scope ratelimit.Scope, how breakage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broken[scope] = how
}

func (r *fakeRequester) Request(ctx context.Context, identity, kind string, msg any) (any, error) {
	r.calls.Add(1)
	key, err := ratelimit.ParseIdentity(identity)
	if err != nil || kind != ratelimit.Kind {
		return nil, fmt.Errorf("fake requester: %s/%s: %v", kind, identity, err)
	}
	r.mu.Lock()
	how := r.broken[key.Scope]
	pid, ok := r.pids[identity]
	if !ok && how == working {
		pid = r.e.spawn(identity)
		r.pids[identity] = pid
	}
	r.mu.Unlock()
	switch how {
	case timingOut:
		return nil, fmt.Errorf("%w: %s/%s", cluster.ErrTimeout, kind, identity)
	case storeDown:
		return &grains.Failure{Code: grains.CodeUnavailable, Message: "load counters: storage unavailable"}, nil
	case hanging:
		<-r.hung
		return nil, errors.New("test over")
	}
	deadline, _ := ctx.Deadline()
	return r.e.system.Root.RequestFuture(pid, msg, time.Until(deadline)).Result()
}

// recordingObserver counts what a Limiter reports.
type recordingObserver struct {
	mu          sync.Mutex
	allowed     map[ratelimit.Scope]int
	refused     map[ratelimit.Scope]int
	unavailable map[ratelimit.Scope]int
}

var _ ratelimit.Observer = (*recordingObserver)(nil)

func newRecordingObserver() *recordingObserver {
	return &recordingObserver{allowed: map[ratelimit.Scope]int{}, refused: map[ratelimit.Scope]int{}, unavailable: map[ratelimit.Scope]int{}}
}

func (o *recordingObserver) Decision(scope ratelimit.Scope, allowed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if allowed {
		o.allowed[scope]++
	} else {
		o.refused[scope]++
	}
}

func (o *recordingObserver) Unavailable(scope ratelimit.Scope) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.unavailable[scope]++
}

// limiterEnv is an env with a Limiter over a fakeRequester. The timeout is
// generous: only the tests of timeouts use broken scopes, which answer (or
// are abandoned) without waiting for it.
type limiterEnv struct {
	*env
	r        *fakeRequester
	observer *recordingObserver
	limiter  *ratelimit.Limiter
}

func newLimiterEnv(t *testing.T, timeout time.Duration) *limiterEnv {
	t.Helper()
	e := &limiterEnv{env: newEnv(t), observer: newRecordingObserver()}
	e.r = newFakeRequester(e.env)
	var err error
	e.limiter, err = ratelimit.NewLimiter(e.r, ratelimit.LimiterConfig{Timeout: timeout, Observer: e.observer, Clock: e.clock, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *limiterEnv) limit(policy ratelimit.UnavailablePolicy, checks ...ratelimit.ScopeCheck) ratelimit.Result {
	e.t.Helper()
	res, err := e.limiter.Check(context.Background(), "acme", checks, policy)
	if err != nil {
		e.t.Fatalf("check %v: %v", checks, err)
	}
	return res
}

func wantResult(t *testing.T, what string, got, want ratelimit.Result) {
	t.Helper()
	if !got.ResetAt.Equal(want.ResetAt) {
		t.Fatalf("%s: reset at %s, want %s", what, got.ResetAt.UTC(), want.ResetAt.UTC())
	}
	got.ResetAt, want.ResetAt = time.Time{}, time.Time{}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

var (
	tenantAcme = ratelimit.ScopeCheck{Scope: ratelimit.ScopeTenant, ID: "acme", PerMinute: 100}
	userAlice  = ratelimit.ScopeCheck{Scope: ratelimit.ScopeUser, ID: "alice", PerMinute: 5}
	ipClient   = ratelimit.ScopeCheck{Scope: ratelimit.ScopeIP, ID: "203.0.113.7", PerMinute: 100, Burst: 5}
)

func TestLimiterAllowsOnlyWhenEveryScopeAllowsAndShowsTheMostRestrictive(t *testing.T) {
	e := newLimiterEnv(t, 5*time.Second)
	reset := testkit.Epoch.Add(time.Minute)
	for i := int64(1); i <= 5; i++ {
		// The user's limit has the least remaining.
		wantResult(t, fmt.Sprint("request ", i), e.limit("", tenantAcme, userAlice, ipClient),
			ratelimit.Result{Allowed: true, Limit: 5, Remaining: 5 - i, ResetAt: reset})
	}
	// The 6th: the user's minute is full (wait 72 s) and the ip's second is
	// full (wait 1.2 s). The result shows the longer wait: the client must
	// wait for both.
	wantResult(t, "request 6", e.limit("", tenantAcme, userAlice, ipClient),
		ratelimit.Result{Refused: ratelimit.ScopeUser, Limit: 5, Remaining: 0, ResetAt: testkit.Epoch.Add(72 * time.Second), RetryAfter: 72 * time.Second})

	// The tenant allowed the 6th, then got it back: it counted 5, not 6.
	e.at(2 * time.Second)
	wantResult(t, "tenant alone", e.limit("", tenantAcme),
		ratelimit.Result{Allowed: true, Limit: 100, Remaining: 100 - 5 - 1, ResetAt: reset})

	if got := fmt.Sprint(e.observer.allowed, e.observer.refused, e.observer.unavailable); got != "map[ip:5 tenant:7 user:5] map[ip:1 user:1] map[]" {
		t.Errorf("observed %s", got)
	}
}

func TestLimiterShowsTheSmallerLimitWhenRemainingTies(t *testing.T) {
	e := newLimiterEnv(t, 5*time.Second)
	tenant := ratelimit.ScopeCheck{Scope: ratelimit.ScopeTenant, ID: "acme", PerMinute: 20}
	user := ratelimit.ScopeCheck{Scope: ratelimit.ScopeUser, ID: "alice", PerMinute: 10}
	heavy := tenant
	heavy.Cost = 10
	e.limit("", heavy)
	wantResult(t, "both at 9", e.limit("", tenant, user),
		ratelimit.Result{Allowed: true, Limit: 10, Remaining: 9, ResetAt: testkit.Epoch.Add(time.Minute)})
}

func TestRefusedRequestsConsumeNothingInOtherScopes(t *testing.T) {
	e := newLimiterEnv(t, 5*time.Second)
	ip := ratelimit.ScopeCheck{Scope: ratelimit.ScopeIP, ID: "198.51.100.9", PerMinute: 2}
	allowed := 0
	for range 10 {
		res := e.limit("", tenantAcme, ip)
		if res.Allowed {
			allowed++
		} else if res.Refused != ratelimit.ScopeIP {
			t.Fatalf("refused by %q", res.Refused)
		}
	}
	if allowed != 2 {
		t.Fatalf("%d allowed, want 2", allowed)
	}
	// The tenant counted the 2 allowed requests only; the 8 refused were
	// refunded.
	wantResult(t, "tenant alone", e.limit("", tenantAcme),
		ratelimit.Result{Allowed: true, Limit: 100, Remaining: 100 - 2 - 1, ResetAt: testkit.Epoch.Add(time.Minute)})
}

func TestUnreachableLimitersFollowThePolicy(t *testing.T) {
	e := newLimiterEnv(t, 5*time.Second)
	e.r.breakScope(ratelimit.ScopeUser, timingOut)
	e.r.breakScope(ratelimit.ScopeIP, storeDown)
	unreachable := []ratelimit.Scope{ratelimit.ScopeUser, ratelimit.ScopeIP}

	// Open (the default): as if they had allowed; the tenant's limit shows.
	for i, policy := range []ratelimit.UnavailablePolicy{"", ratelimit.PolicyOpen} {
		wantResult(t, fmt.Sprintf("policy %q", policy), e.limit(policy, tenantAcme, userAlice, ipClient),
			ratelimit.Result{Allowed: true, Limit: 100, Remaining: 99 - int64(i), ResetAt: testkit.Epoch.Add(time.Minute), Unavailable: unreachable})
	}

	// Closed: refused by the first unreachable scope, retry in a second;
	// the tenant, which allowed, is refunded.
	e.at(500 * time.Millisecond)
	wantResult(t, "closed", e.limit(ratelimit.PolicyClosed, tenantAcme, userAlice, ipClient),
		ratelimit.Result{Refused: ratelimit.ScopeUser, Limit: 5, ResetAt: testkit.Epoch.Add(2 * time.Second), RetryAfter: time.Second, Unavailable: unreachable})
	wantResult(t, "tenant alone", e.limit("", tenantAcme),
		ratelimit.Result{Allowed: true, Limit: 100, Remaining: 100 - 2 - 1, ResetAt: testkit.Epoch.Add(time.Minute)})

	// Nobody reachable, open: allowed, and nothing known to show.
	wantResult(t, "none reachable", e.limit(ratelimit.PolicyOpen, userAlice, ipClient),
		ratelimit.Result{Allowed: true, Unavailable: unreachable})

	if got := fmt.Sprint(e.observer.unavailable); got != "map[ip:4 user:4]" {
		t.Errorf("observed unavailable %s", got)
	}
}

func TestALimiterThatDoesNotAnswerIsAbandonedAtTheTimeout(t *testing.T) {
	e := newLimiterEnv(t, 20*time.Millisecond)
	e.r.breakScope(ratelimit.ScopeTenant, hanging)
	e.r.breakScope(ratelimit.ScopeUser, hanging)
	wantResult(t, "open", e.limit(ratelimit.PolicyOpen, tenantAcme, userAlice),
		ratelimit.Result{Allowed: true, Unavailable: []ratelimit.Scope{ratelimit.ScopeTenant, ratelimit.ScopeUser}})
	wantResult(t, "closed", e.limit(ratelimit.PolicyClosed, tenantAcme, userAlice),
		ratelimit.Result{Refused: ratelimit.ScopeTenant, Limit: 100, ResetAt: testkit.Epoch.Add(time.Second), RetryAfter: time.Second,
			Unavailable: []ratelimit.Scope{ratelimit.ScopeTenant, ratelimit.ScopeUser}})
}

func TestLimiterRefusesMalformedChecksWithoutAskingAnyone(t *testing.T) {
	e := newLimiterEnv(t, 5*time.Second)
	for _, tc := range []struct {
		tenant string
		check  ratelimit.ScopeCheck
		policy ratelimit.UnavailablePolicy
		want   error
	}{
		{"Acme", tenantAcme, "", ratelimit.ErrBadIdentity},
		{"acme", ratelimit.ScopeCheck{Scope: "session", ID: "x", PerMinute: tenantAcme.PerMinute}, "", ratelimit.ErrBadIdentity},
		{"acme", ratelimit.ScopeCheck{Scope: ratelimit.ScopeIP, ID: "", PerMinute: tenantAcme.PerMinute}, "", ratelimit.ErrBadIdentity},
		{"acme", ratelimit.ScopeCheck{Scope: ratelimit.ScopeUser, ID: "alice"}, "", ratelimit.ErrBadRequest},
		{"acme", ratelimit.ScopeCheck{Scope: ratelimit.ScopeUser, ID: "alice", PerMinute: 5, Cost: 6}, "", ratelimit.ErrBadRequest},
		{"acme", tenantAcme, "maybe", ratelimit.ErrBadRequest},
	} {
		_, err := e.limiter.Check(context.Background(), tc.tenant, []ratelimit.ScopeCheck{tenantAcme, tc.check}, tc.policy)
		if !errors.Is(err, tc.want) {
			t.Errorf("%q %+v %q: %v, want %v", tc.tenant, tc.check, tc.policy, err, tc.want)
		}
	}
	if n := e.r.calls.Load(); n != 0 {
		t.Fatalf("%d grain calls for malformed checks", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.limiter.Check(ctx, "acme", []ratelimit.ScopeCheck{tenantAcme}, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if res := e.limit("" /* no checks */); !res.Allowed || res.Limit != 0 {
		t.Fatalf("no checks: %+v", res)
	}

	if _, err := ratelimit.NewLimiter(nil, ratelimit.LimiterConfig{}); err == nil {
		t.Error("NewLimiter accepted a nil Requester")
	}
	if _, err := ratelimit.NewLimiter(e.r, ratelimit.LimiterConfig{Timeout: -1}); err == nil {
		t.Error("NewLimiter accepted a negative Timeout")
	}
}

// Charge counts tokens already used past the limit: the next check is
// refused until the sliding minute has room again. A charge needs valid
// limits, and a cost of 0 charges nothing.
func TestChargeCountsUsedTokensPastTheLimit(t *testing.T) {
	e := newLimiterEnv(t, 5*time.Second)
	tokens := ratelimit.ScopeCheck{Scope: ratelimit.ScopeTokens, ID: "acme", PerMinute: 100}
	if res := e.limit("", tokens); !res.Allowed || res.Remaining != 99 {
		t.Fatalf("first check %+v", res)
	}
	used := tokens
	used.Cost = 250 // more than the whole minute's tokens
	if err := e.limiter.Charge(context.Background(), "acme", used); err != nil {
		t.Fatal(err)
	}
	res := e.limit("", tokens)
	if res.Allowed || res.Refused != ratelimit.ScopeTokens || res.RetryAfter <= 0 {
		t.Fatalf("after the charge: %+v", res)
	}
	// Two minutes on, neither the current nor the previous minute holds
	// the charge.
	e.at(2 * time.Minute)
	if res := e.limit("", tokens); !res.Allowed {
		t.Fatalf("two minutes on: %+v", res)
	}
	if err := e.limiter.Charge(context.Background(), "acme", tokens); err != nil {
		t.Fatalf("a charge of 0: %v", err)
	}
	bad := used
	bad.PerMinute = 0
	if err := e.limiter.Charge(context.Background(), "acme", bad); !errors.Is(err, ratelimit.ErrBadRequest) {
		t.Fatalf("a charge without limits: %v", err)
	}
}
