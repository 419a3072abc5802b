package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// sessionCluster starts n in-process nodes hosting ChatSession grains,
// each with its own Badger store on disk. The stores close after the
// nodes have stopped.
func sessionCluster(t *testing.T, n int) (*testkit.Cluster, []*badgerstore.Store, []string) {
	t.Helper()
	dirs := make([]string, n)
	stores := make([]*badgerstore.Store, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
		stores[i] = testkit.OpenStore(t, dirs[i])
	}
	c := testkit.NewCluster(t, n, testkit.WithConfig(func(i int, cfg *cluster.Config) {
		kind, err := session.NewKind(session.Config{Store: stores[i], Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind)
	}))
	return c, stores, dirs
}

func call(t *testing.T, n *cluster.Node, tenant, sessionID string, msg any) any {
	t.Helper()
	res, err := tryCall(n, tenant, sessionID, msg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryCall is call for a goroutine other than the test's: it returns what
// went wrong instead of failing the test.
func tryCall(n *cluster.Node, tenant, sessionID string, msg any) (any, error) {
	identity, err := session.Identity(tenant, sessionID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Request(ctx, identity, session.Kind, msg)
	if err != nil {
		return nil, fmt.Errorf("%s %T: %w", identity, msg, err)
	}
	if f, ok := res.(*grains.Failure); ok {
		return nil, fmt.Errorf("%s %T: %s: %s", identity, msg, f.Code, f.Message)
	}
	return res, nil
}

func appendMsg(t *testing.T, n *cluster.Node, tenant, sessionID, content string) *session.Message {
	t.Helper()
	return call(t, n, tenant, sessionID, &session.Append{Role: "user", Content: content}).(*session.Appended).Message
}

func history(t *testing.T, n *cluster.Node, tenant, sessionID string) []*session.Message {
	t.Helper()
	return call(t, n, tenant, sessionID, &session.History{Limit: 100}).(*session.Page).Messages
}

func TestTenantsSharingASessionIDNeverSeeEachOther(t *testing.T) {
	c, stores, dirs := sessionCluster(t, 3)
	shared := uuid.NewString()
	tenants := []string{"acme", "globex"}
	for i := range 5 {
		for _, tenant := range tenants {
			appendMsg(t, c.Node(i%3), tenant, shared, fmt.Sprintf("%s secret %d", tenant, i))
		}
	}
	for _, tenant := range tenants {
		for _, n := range c.Nodes() {
			msgs := history(t, n, tenant, shared)
			if len(msgs) != 5 {
				t.Fatalf("%s sees %d messages from %s, want 5", tenant, len(msgs), n.Name())
			}
			for _, m := range msgs {
				if !strings.HasPrefix(m.Content, tenant+" ") {
					t.Fatalf("%s read %q", tenant, m.Content)
				}
			}
		}
	}

	// Clearing one tenant's session leaves the other's.
	call(t, c.Node(1), "acme", shared, &session.Clear{})
	if got := history(t, c.Node(2), "acme", shared); len(got) != 0 {
		t.Fatalf("acme's session holds %d messages after clear", len(got))
	}
	if got := history(t, c.Node(0), "globex", shared); len(got) != 5 {
		t.Fatalf("globex's session holds %d messages after acme's clear, want 5", len(got))
	}

	// On disk: stop the nodes, open every data dir and check that each
	// key belongs to a known tenant and each message to its own tenant.
	for i := range c.Nodes() {
		c.StopNode(i)
	}
	for _, s := range stores {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	onDisk := map[string]int{}
	for _, dir := range dirs {
		for tenant, n := range checkDiskIsolation(t, dir, tenants, shared) {
			onDisk[tenant] += n
		}
	}
	if onDisk["globex"] != 5 || onDisk["acme"] != 0 {
		t.Fatalf("messages on disk by tenant: %v, want globex 5 and acme 0", onDisk)
	}
}

// checkDiskIsolation opens a stopped node's data dir and checks every
// key's tenant prefix, and returns how many of each tenant's messages of
// the session it holds.
func checkDiskIsolation(t *testing.T, dir string, tenants []string, sessionID string) map[string]int {
	t.Helper()
	store, err := badgerstore.Open(badgerstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	err = store.ScanKeys(ctx, "", func(key []byte) error {
		tenant, _, _ := strings.Cut(string(key), ":")
		if tenant != "acme" && tenant != "globex" {
			return fmt.Errorf("key %q has no known tenant prefix", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, tenant := range tenants {
		msgs, err := store.Page(ctx, persistence.SessionKey{Tenant: tenant, Session: sessionID}, 0, 100, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if !strings.HasPrefix(m.Content, tenant+" ") {
				t.Fatalf("%s's key range on disk holds %q", tenant, m.Content)
			}
		}
		found[tenant] = len(msgs)
	}
	return found
}

func TestConcurrentAppendsFromEveryNodeGetOneGaplessSequence(t *testing.T) {
	c, _, _ := sessionCluster(t, 3)
	sessionID := uuid.NewString()
	const perNode = 30
	var wg sync.WaitGroup
	errs := make(chan error, 3*perNode)
	for _, n := range c.Nodes() {
		wg.Go(func() {
			for i := range perNode {
				if _, err := tryCall(n, "acme", sessionID, &session.Append{Role: "user", Content: fmt.Sprintf("%s-%d", n.Name(), i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}

	msgs := history(t, c.Node(0), "acme", sessionID)
	if len(msgs) != 3*perNode {
		t.Fatalf("%d messages stored, want %d", len(msgs), 3*perNode)
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		if want := uint64(3*perNode - i); m.Seq != want {
			t.Fatalf("position %d holds seq %d, want %d", i, m.Seq, want)
		}
		if seen[m.Content] {
			t.Fatalf("%q stored twice", m.Content)
		}
		seen[m.Content] = true
	}
}

func TestRestartedNodeServesTheSameHistory(t *testing.T) {
	dir := t.TempDir()
	sessionID := uuid.NewString()
	run := func(write bool) []*session.Message {
		store, err := badgerstore.Open(badgerstore.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
			kind, err := session.NewKind(session.Config{Store: store, Logger: cfg.Logger})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Kinds = append(cfg.Kinds, kind)
		}))
		defer c.StopNode(0)
		node := c.Node(0)
		if write {
			for i := range 3 {
				appendMsg(t, node, "acme", sessionID, fmt.Sprintf("acme %d", i))
			}
		}
		return history(t, node, "acme", sessionID)
	}
	before := run(true)
	after := run(false)
	if len(after) != 3 || len(before) != 3 {
		t.Fatalf("%d messages before the restart, %d after", len(before), len(after))
	}
	for i := range after {
		if after[i].Id != before[i].Id || after[i].Seq != before[i].Seq || after[i].Content != before[i].Content {
			t.Fatalf("message %d changed across the restart: %+v vs %+v", i, before[i], after[i])
		}
	}
}

// TestHostileSessionIdentitiesAreRefusedBeforeAnyGrain sends hostile
// session ids through the HTTP edge (in the body of POST /chat, in the
// path of history, delete and stop) and checks that each is a 4xx and
// that no grain of any kind was activated, then that a good id does
// activate one (so the count can see it). The identity constructor itself
// refuses hostile tenants too.
func TestHostileSessionIdentitiesAreRefusedBeforeAnyGrain(t *testing.T) {
	var activations atomic.Int64
	store := testkit.OpenStore(t, "")
	c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		kind, err := session.NewKind(session.Config{Store: store, Logger: cfg.Logger, OnActivate: func() { activations.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind)
	}))
	node := c.Node(0)
	h, err := edge.New(edge.Config{NodeName: node.Name(), Health: alwaysReady{}, Tenants: limitRegistry(t),
		Sessions: session.NewClient(node, node.System()), Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	send := func(method, path, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer other-key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	for _, hostile := range []string{
		"../../etc/passwd",
		"acme:" + uuid.NewString(),
		// (An upper-case UUID is not hostile over HTTP: the edge reads
		// ids case-insensitively, as the same session.)
		uuid.NewString() + "\x00",
		uuid.NewString() + ":ratelimit:ip:1.2.3.4",
		"",
		strings.Repeat("a", 4096),
	} {
		body, _ := json.Marshal(map[string]any{"sessionId": hostile, "message": "hi", "stream": false})
		if got := send("POST", "/chat", string(body)); got < 400 || got > 499 {
			t.Errorf("POST /chat with sessionId %q: %d, want 4xx", hostile, got)
		}
		escaped := url.PathEscape(hostile)
		for _, r := range []struct{ method, path string }{
			{"GET", "/chat/" + escaped + "/history"},
			{"DELETE", "/chat/" + escaped},
		} {
			if got := send(r.method, r.path, ""); got < 400 || got > 499 {
				t.Errorf("%s %s: %d, want 4xx", r.method, r.path, got)
			}
		}
	}
	if n := activations.Load(); n != 0 {
		t.Fatalf("%d grains activated by hostile ids", n)
	}
	if got := send("GET", "/chat/"+uuid.NewString()+"/history", ""); got != 200 {
		t.Fatalf("a good id: %d", got)
	}
	if n := activations.Load(); n != 1 {
		t.Fatalf("a good id activated %d grains, want 1", n)
	}

	for _, tc := range []struct{ tenant, session string }{
		{"acme", "../../etc/passwd"},
		{"acme:globex", uuid.NewString()},
		{"ACME", uuid.NewString()},
		{"acme", strings.ToUpper(uuid.NewString())},
		{"", uuid.NewString()},
		{strings.Repeat("a", 65), uuid.NewString()},
		{"acme", uuid.NewString() + "\x00"},
	} {
		if id, err := session.Identity(tc.tenant, tc.session); err == nil {
			t.Errorf("Identity(%q, %q) = %q, want an error", tc.tenant, tc.session, id)
		}
	}
}
