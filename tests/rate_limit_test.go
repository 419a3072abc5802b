package tests

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// limitTenants gives each test its own tenant, key "<id>-key".
const limitTenants = `{"tenants": [
 {"id": "exact",   "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"perMinute": 10, "burst": 100, "user": {"perMinute": 1000}, "ip": {"perMinute": 1000}}},
 {"id": "burst",   "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"perMinute": 100, "burst": 5, "user": {"perMinute": 1000}, "ip": {"perMinute": 1000}}},
 {"id": "users",   "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"perMinute": 4, "burst": 100, "user": {"perMinute": 2}, "ip": {"perMinute": 1000}}},
 {"id": "ips",     "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"perMinute": 1000, "burst": 100, "user": {"perMinute": 1000}, "ip": {"perMinute": 2}}},
 {"id": "other",   "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"perMinute": 10, "burst": 100, "user": {"perMinute": 1000}, "ip": {"perMinute": 1000}}},
 {"id": "shared",  "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"perMinute": 6, "burst": 100, "user": {"perMinute": 1000}, "ip": {"perMinute": 1000}}},
 {"id": "open",    "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"onLimiterUnavailable": "open"}},
 {"id": "closed",  "apiKeys": [{"id": "k", "hash": "%s"}], "rateLimit": {"onLimiterUnavailable": "closed"}}
]}`

func limitRegistry(t *testing.T) *tenants.Registry {
	t.Helper()
	var hashes []any
	for _, id := range []string{"exact", "burst", "users", "ips", "other", "shared", "open", "closed"} {
		hashes = append(hashes, tenants.HashKey(id+"-key"))
	}
	reg, err := tenants.Parse(strings.NewReader(fmt.Sprintf(limitTenants, hashes...)))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// limitNet is n in-process nodes, each with an HTTP edge, all limiters on
// one fake clock.
type limitNet struct {
	t      *testing.T
	stores []*badgerstore.Store
	clock  *testkit.FakeClock
	c      *testkit.Cluster
	edges  []string
}

type netOptions struct {
	trusted   []netip.Prefix
	requester func(*cluster.Node) grains.Requester
	dirs      []string // on-disk stores when set
}

func newLimitNet(t *testing.T, n int, opts netOptions) *limitNet {
	t.Helper()
	clk := testkit.NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	stores := make([]*badgerstore.Store, n)
	for i := range stores {
		dir := ""
		if opts.dirs != nil {
			dir = opts.dirs[i]
		}
		stores[i] = testkit.OpenStore(t, dir)
	}
	c := testkit.NewCluster(t, n, testkit.WithConfig(func(i int, cfg *cluster.Config) {
		sk, err := session.NewKind(session.Config{Store: stores[i], Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		rk, err := ratelimit.NewKind(ratelimit.Config{Store: stores[i], Clock: clk, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, sk, rk)
	}))
	ln := &limitNet{t: t, clock: clk, c: c, stores: stores}
	reg := limitRegistry(t)
	for _, node := range c.Nodes() {
		var req grains.Requester = node
		if opts.requester != nil {
			req = opts.requester(node)
		}
		limiter, err := ratelimit.NewLimiter(req, ratelimit.LimiterConfig{Clock: clk, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		h, err := edge.New(edge.Config{NodeName: node.Name(), Health: alwaysReady{}, Tenants: reg, Sessions: session.NewClient(node, node.System()),
			RateLimiter: edge.NewRateLimiter(limiter), TrustedProxies: opts.trusted, Logger: testkit.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		ln.edges = append(ln.edges, srv.URL)
	}
	return ln
}

// hit sends one rate-limited request (a history read) as tenant through
// edge i, with extra headers.
func (ln *limitNet) hit(i int, tenant string, header ...string) *http.Response {
	ln.t.Helper()
	req, _ := http.NewRequest("GET", ln.edges[i]+"/chat/"+uuid.NewString()+"/history", nil)
	req.Header.Set("Authorization", "Bearer "+tenant+"-key")
	for j := 0; j+1 < len(header); j += 2 {
		req.Header.Set(header[j], header[j+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ln.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func headers(resp *http.Response) string {
	return fmt.Sprintf("%d limit=%s remaining=%s reset=%s retry=%s", resp.StatusCode,
		resp.Header.Get("X-RateLimit-Limit"), resp.Header.Get("X-RateLimit-Remaining"),
		resp.Header.Get("X-RateLimit-Reset"), resp.Header.Get("Retry-After"))
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestRateLimitsOverHTTP(t *testing.T) {
	ln := newLimitNet(t, 1, netOptions{})
	noon := ln.clock.Now()

	t.Run("limit+1 in a window is 429 with exact headers", func(t *testing.T) {
		ln.clock.Set(noon.Add(15 * time.Second)) // 12:00:15
		for i := 1; i <= 10; i++ {
			want := fmt.Sprintf("200 limit=10 remaining=%d reset=%s retry=", 10-i, unix(noon.Add(time.Minute)))
			if got := headers(ln.hit(0, "exact")); got != want {
				t.Fatalf("request %d: %s, want %s", i, got, want)
			}
		}
		// The estimate falls below 10 at 12:01:06 (10 × 54/60 = 9).
		want := fmt.Sprintf("429 limit=10 remaining=0 reset=%s retry=51", unix(noon.Add(66*time.Second)))
		if got := headers(ln.hit(0, "exact")); got != want {
			t.Fatalf("11th: %s, want %s", got, want)
		}
		// The window slides: at 12:01:05 a fixed window would have reset
		// long ago; the sliding one still refuses, and allows at 12:01:06.
		ln.clock.Set(noon.Add(65 * time.Second))
		if got := ln.hit(0, "exact").StatusCode; got != 429 {
			t.Fatalf("12:01:05: %d, want 429", got)
		}
		ln.clock.Set(noon.Add(66 * time.Second))
		if got := ln.hit(0, "exact").StatusCode; got != 200 {
			t.Fatalf("12:01:06: %d, want 200", got)
		}
	})

	t.Run("burst is limited within a second, sustained within a minute", func(t *testing.T) {
		ln.clock.Set(noon.Add(2 * time.Minute))
		for i := 1; i <= 5; i++ {
			if got := ln.hit(0, "burst").StatusCode; got != 200 {
				t.Fatalf("burst request %d: %d", i, got)
			}
		}
		if resp := ln.hit(0, "burst"); resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Limit") != "100" {
			t.Fatalf("6th in one second: %s", headers(resp))
		}
		ln.clock.Advance(2 * time.Second)
		if got := ln.hit(0, "burst").StatusCode; got != 200 {
			t.Fatalf("two seconds later: %d", got)
		}
		// Sustained: sending as fast as the burst limit lets (a refused
		// client tries again 100 ms later on the fake clock; Retry-After,
		// in whole seconds, stays within the burst window) reaches the
		// minute's 100 within the minute, and the 101st is refused by the
		// minute limit.
		start, allowed := ln.clock.Now(), 6
		for allowed < 100 {
			if ln.clock.Now().Sub(start) >= time.Minute {
				t.Fatalf("only %d allowed in a minute, want the sustained limit 100", allowed)
			}
			resp := ln.hit(0, "burst")
			switch resp.StatusCode {
			case 200:
				allowed++
			case 429:
				wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || wait < 1 || wait > 2 {
					t.Fatalf("refused by the burst limit after %d: %s, want Retry-After of a second or two", allowed, headers(resp))
				}
				ln.clock.Advance(100 * time.Millisecond)
			default:
				t.Fatalf("request %d: %d", allowed+1, resp.StatusCode)
			}
		}
		ln.clock.Advance(2 * time.Second) // clear of the burst window
		resp := ln.hit(0, "burst")
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Limit") != "100" || resp.Header.Get("X-RateLimit-Remaining") != "0" || wait <= 2 {
			t.Fatalf("101st within the minute: %s, want 429 by the minute limit", headers(resp))
		}
	})

	t.Run("a stricter user limit wins and refusals consume nothing elsewhere", func(t *testing.T) {
		ln.clock.Set(noon.Add(4 * time.Minute))
		// User a: 2 allowed (user limit 2 is the most restrictive shown).
		if got := headers(ln.hit(0, "users", "X-User-Id", "a")); !strings.HasPrefix(got, "200 limit=2 remaining=1") {
			t.Fatalf("a's first: %s", got)
		}
		ln.hit(0, "users", "X-User-Id", "a")
		// Three refusals of user a must not spend the tenant's 4.
		for range 3 {
			if got := ln.hit(0, "users", "X-User-Id", "a").StatusCode; got != 429 {
				t.Fatalf("a over its limit: %d", got)
			}
		}
		// User b gets the tenant's remaining 2; then the tenant refuses.
		for i := range 2 {
			if got := ln.hit(0, "users", "X-User-Id", "b").StatusCode; got != 200 {
				t.Fatalf("b request %d: %d: refused requests of a were counted against the tenant", i+1, got)
			}
		}
		if got := headers(ln.hit(0, "users", "X-User-Id", "c")); !strings.HasPrefix(got, "429 limit=4 remaining=0") {
			t.Fatalf("tenant exhausted: %s", got)
		}
	})

	t.Run("an untrusted peer cannot spoof X-Forwarded-For", func(t *testing.T) {
		ln.clock.Set(noon.Add(6 * time.Minute))
		for i := range 2 {
			if got := ln.hit(0, "ips", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)).StatusCode; got != 200 {
				t.Fatalf("%d", got)
			}
		}
		if got := ln.hit(0, "ips", "X-Forwarded-For", "198.51.100.7").StatusCode; got != 429 {
			t.Fatalf("a spoofed X-Forwarded-For escaped the socket address's limit: %d", got)
		}
	})

	t.Run("one exhausted tenant leaves another untouched", func(t *testing.T) {
		ln.clock.Set(noon.Add(8 * time.Minute))
		for range 11 {
			ln.hit(0, "exact")
		}
		if got := ln.hit(0, "exact").StatusCode; got != 429 {
			t.Fatalf("exact: %d", got)
		}
		if got := headers(ln.hit(0, "other")); !strings.HasPrefix(got, "200 limit=10 remaining=9") {
			t.Fatalf("other: %s", got)
		}
	})

	t.Run("a bad X-User-Id is 400", func(t *testing.T) {
		if got := ln.hit(0, "exact", "X-User-Id", strings.Repeat("u", 300)).StatusCode; got != 400 {
			t.Fatalf("%d", got)
		}
	})
}

func TestTrustedProxyForwardsTheClientIP(t *testing.T) {
	ln := newLimitNet(t, 1, netOptions{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	for i := range 2 {
		if got := ln.hit(0, "ips", "X-Forwarded-For", "198.51.100.1").StatusCode; got != 200 {
			t.Fatalf("client 1 request %d: %d", i+1, got)
		}
	}
	if got := ln.hit(0, "ips", "X-Forwarded-For", "198.51.100.1").StatusCode; got != 429 {
		t.Fatalf("client 1 third: %d", got)
	}
	// Another client behind the same proxy has its own budget; an IPv6
	// client is limited per /64.
	if got := ln.hit(0, "ips", "X-Forwarded-For", "198.51.100.2").StatusCode; got != 200 {
		t.Fatalf("client 2: %d", got)
	}
	ln.hit(0, "ips", "X-Forwarded-For", "2001:db8:1:2::1")
	ln.hit(0, "ips", "X-Forwarded-For", "2001:db8:1:2::ffff")
	if got := ln.hit(0, "ips", "X-Forwarded-For", "2001:db8:1:2:aaaa::3").StatusCode; got != 429 {
		t.Fatalf("third address of one IPv6 /64: %d", got)
	}
}

func TestEveryEdgeOfAClusterSharesOneWindow(t *testing.T) {
	ln := newLimitNet(t, 3, netOptions{})
	for i := range 6 {
		if got := ln.hit(i%3, "shared").StatusCode; got != 200 {
			t.Fatalf("request %d via node %d: %d", i+1, i%3, got)
		}
	}
	for i := range 3 {
		if got := ln.hit(i, "shared").StatusCode; got != 429 {
			t.Fatalf("7th request via node %d: %d", i, got)
		}
	}
}

func TestLimiterStateSurvivesARestart(t *testing.T) {
	dirs := []string{t.TempDir()}
	run := func(requests int) string {
		ln := newLimitNet(t, 1, netOptions{dirs: dirs})
		var last string
		for range requests {
			last = headers(ln.hit(0, "exact"))
		}
		ln.c.StopNode(0) // passivates the limiter: counters written
		if err := ln.stores[0].Close(); err != nil {
			t.Fatal(err)
		}
		return last
	}
	if got := run(3); !strings.HasPrefix(got, "200 limit=10 remaining=7") {
		t.Fatalf("before restart: %s", got)
	}
	if got := run(1); !strings.HasPrefix(got, "200 limit=10 remaining=6") {
		t.Fatalf("after restart: %s: the counters were lost", got)
	}
}

// downLimiters fails every RateLimiter call, as when the limiter's node
// has just died.
type downLimiters struct{ node *cluster.Node }

func (d downLimiters) Request(ctx context.Context, identity, kind string, msg any) (any, error) {
	if kind == ratelimit.Kind {
		return nil, errors.New("limiter node unreachable")
	}
	return d.node.Request(ctx, identity, kind, msg)
}

func TestUnavailableLimiterFollowsTheTenantsPolicy(t *testing.T) {
	ln := newLimitNet(t, 1, netOptions{requester: func(n *cluster.Node) grains.Requester { return downLimiters{n} }})
	if resp := ln.hit(0, "open"); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "" {
		t.Fatalf("open policy: %s", headers(resp))
	}
	if resp := ln.hit(0, "closed"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("closed policy: %s", headers(resp))
	}
}

type alwaysReady struct{}

func (alwaysReady) Ready() error { return nil }
func (alwaysReady) Members() any { return nil }
