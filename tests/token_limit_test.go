package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
)

// tokenNet is one node whose tenant "tpm" may spend 30 tokens a minute
// (a mock reply to one word costs about 27) and whose tenant "free" has no
// token limit; limiters on a fake clock.
type tokenNet struct {
	t     *testing.T
	url   string
	clock *testkit.FakeClock
	gate  chan struct{}
}

func newTokenNet(t *testing.T) *tokenNet {
	t.Helper()
	reg, err := tenants.Parse(strings.NewReader(`{"tenants": [
	 {"id": "tpm", "apiKeys": [{"id": "k", "hash": "` + tenants.HashKey("tpm-key") + `"}], "rateLimit": {"tokensPerMinute": 30}},
	 {"id": "free", "apiKeys": [{"id": "k", "hash": "` + tenants.HashKey("free-key") + `"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tn := &tokenNet{t: t, clock: testkit.NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)), gate: make(chan struct{})}
	var limiter atomic.Pointer[ratelimit.Limiter]
	store := testkit.OpenStore(t, "")
	c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		sk, err := session.NewKind(session.Config{Store: store, Logger: cfg.Logger, Model: model.Mock{Gate: tn.gate},
			OnUsage: edge.ChargeTokens(reg, limiter.Load, cfg.Logger)})
		if err != nil {
			t.Fatal(err)
		}
		rk, err := ratelimit.NewKind(ratelimit.Config{Store: store, Clock: tn.clock, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, sk, rk)
	}))
	node := c.Node(0)
	l, err := ratelimit.NewLimiter(node, ratelimit.LimiterConfig{Clock: tn.clock, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	limiter.Store(l)
	h, err := edge.New(edge.Config{NodeName: node.Name(), Health: alwaysReady{}, Tenants: reg, Sessions: session.NewClient(node, node.System()),
		RateLimiter: edge.NewRateLimiter(l), Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tn.url = srv.URL
	return tn
}

func (tn *tokenNet) chat(tenant string) *http.Response {
	tn.t.Helper()
	req, _ := http.NewRequest("POST", tn.url+"/chat", strings.NewReader(fmt.Sprintf(`{"sessionId": %q, "message": "hi"}`, uuid.NewString())))
	req.Header.Set("Authorization", "Bearer "+tenant+"-key")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tn.t.Fatal(err)
	}
	return resp
}

// A streamed reply's tokens are charged when it ends, even when its client
// hung up first: the tenant's next chat is refused with 429 in scope
// tokens, with the usual headers, until the minute has room again. Another
// tenant is not limited.
func TestTokensPerMinuteChargesStreamedRepliesClientsLeft(t *testing.T) {
	tn := newTokenNet(t)
	resp := tn.chat("tpm")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("first chat: %s", headers(resp))
	}
	tn.gate <- struct{}{} // one token out, then the client goes away
	resp.Body.Close()
	close(tn.gate) // the reply runs to its end without a listener
	// The charge lands a moment after the reply is stored; a chat or two
	// may pass before it. Without the charge the chats' own one-token
	// checks would take 30 chats to be refused.
	var refused *http.Response
	allowed := 0
	testkit.Eventually(t, 10*time.Second, func() error {
		r := tn.chat("tpm")
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusTooManyRequests {
			if allowed++; allowed > 3 {
				t.Fatalf("%d more chats allowed: the reply's tokens were not charged", allowed)
			}
			return fmt.Errorf("chat answered %d, not yet refused", r.StatusCode)
		}
		if !strings.Contains(string(body), "scope tokens") {
			return fmt.Errorf("refused for another scope: %s", body)
		}
		refused = r
		return nil
	})
	if refused.Header.Get("Retry-After") == "" || refused.Header.Get("X-RateLimit-Limit") != "30" || refused.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("refusal headers: %s", headers(refused))
	}
	if r := tn.chat("free"); r.StatusCode != http.StatusOK {
		t.Fatalf("the tenant without a token limit: %d", r.StatusCode)
	} else {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	tn.clock.Advance(2 * time.Minute)
	r := tn.chat("tpm")
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("two minutes on: %s", headers(r))
	}
}
