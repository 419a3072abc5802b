package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/testkit"
)

func TestARefusedScopeStaysRefusedWithoutAskingItsGrain(t *testing.T) {
	e := newLimiterEnv(t, 5*time.Second)
	for range 5 {
		if res := e.limit("", tenantAcme, userAlice); !res.Allowed {
			t.Fatalf("within the limit: %+v", res)
		}
	}
	first := e.limit("", tenantAcme, userAlice)
	if first.Allowed || first.Refused != ratelimit.ScopeUser || first.RetryAfter != 72*time.Second {
		t.Fatalf("the 6th: %+v, want refused by the user for 72 s", first)
	}
	calls := e.r.calls.Load()
	grains := len(e.r.pids)

	// Until the refusal's end, the same user is refused from memory,
	// whichever address it comes from: no grain is asked, and no limiter
	// starts for the new addresses.
	for i := range 50 {
		e.at(time.Duration(i) * time.Second)
		ip := ratelimit.ScopeCheck{Scope: ratelimit.ScopeIP, ID: fmt.Sprintf("198.51.100.%d", i), PerMinute: 100}
		wantResult(t, fmt.Sprint("refusal ", i), e.limit("", tenantAcme, userAlice, ip),
			ratelimit.Result{Refused: ratelimit.ScopeUser, Limit: 5, ResetAt: first.ResetAt, RetryAfter: 72*time.Second - time.Duration(i)*time.Second})
	}
	if got := e.r.calls.Load() - calls; got != 0 {
		t.Fatalf("%d grain calls for requests the cache refused", got)
	}
	if got := len(e.r.pids) - grains; got != 0 {
		t.Fatalf("%d limiter grains started for refused requests", got)
	}

	// At the refusal's end the grain is asked again, and admits.
	e.at(72 * time.Second)
	calls = e.r.calls.Load()
	if res := e.limit("", tenantAcme, userAlice); !res.Allowed {
		t.Fatalf("after the refusal's end: %+v", res)
	}
	if e.r.calls.Load() == calls {
		t.Fatal("no grain was asked after the refusal's end")
	}
	if res := e.limit("", tenantAcme, userAlice); res.Allowed {
		t.Fatalf("over the limit again: %+v", res)
	}

	// Changed limits (a reloaded tenants file) are asked afresh.
	raised := userAlice
	raised.PerMinute = 50
	if res := e.limit("", tenantAcme, raised); !res.Allowed {
		t.Fatalf("with a raised limit: %+v", res)
	}
}

func TestTheDenyCacheIsBounded(t *testing.T) {
	e := &limiterEnv{env: newEnv(t), observer: newRecordingObserver()}
	e.r = newFakeRequester(e.env)
	var err error
	e.limiter, err = ratelimit.NewLimiter(e.r, ratelimit.LimiterConfig{Timeout: 5 * time.Second, Clock: e.clock, DenyCacheSize: 1, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	user := func(id string) ratelimit.ScopeCheck {
		return ratelimit.ScopeCheck{Scope: ratelimit.ScopeUser, ID: id, PerMinute: 1}
	}
	for _, id := range []string{"alice", "bob"} {
		e.limit("", user(id))
		if res := e.limit("", user(id)); res.Allowed {
			t.Fatalf("%s's second request was allowed", id)
		}
	}
	// bob's refusal took the one place: alice's is asked again.
	calls := e.r.calls.Load()
	if res := e.limit("", user("alice")); res.Allowed {
		t.Fatal("alice allowed")
	}
	if e.r.calls.Load() == calls {
		t.Fatal("alice was refused from memory although the cache holds one entry, bob's")
	}
	calls = e.r.calls.Load()
	e.limit("", user("alice"))
	if e.r.calls.Load() != calls {
		t.Fatal("alice's refusal, just remembered again, was not used")
	}
	if _, err := e.limiter.Check(context.Background(), "acme", []ratelimit.ScopeCheck{user("carol")}, ""); err != nil {
		t.Fatal(err)
	}
}
