package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/actors/testkit"
)

func TestDebugAddrIsLoopbackUnlessMadePublic(t *testing.T) {
	cases := []struct {
		addr   string
		public bool
		ok     bool
	}{
		{"127.0.0.1:6060", false, true},
		{"[::1]:6060", false, true},
		{"localhost:6060", false, true},
		{"0.0.0.0:6060", false, false},
		{":6060", false, false},
		{"10.0.0.7:6060", false, false},
		{"debug.internal:6060", false, false},
		{"0.0.0.0:6060", true, true},
		{"6060", true, false},
	}
	for _, tc := range cases {
		if err := checkDebugAddr(tc.addr, tc.public); (err == nil) != tc.ok {
			t.Errorf("checkDebugAddr(%q, public %v): %v", tc.addr, tc.public, err)
		}
	}
}

// startNode starts a one-node cluster on the node-local store and free
// ports, with args added to its flags, and stops it when the test ends.
func startNode(t *testing.T, args ...string) serveConfig {
	t.Helper()
	cfg, _ := startStoppableNode(t, args...)
	return cfg
}

// startStoppableNode is startNode that also returns a function stopping
// the node before the test ends (a second call does nothing).
func startStoppableNode(t *testing.T, args ...string) (serveConfig, func()) {
	t.Helper()
	cfg, err := parseServeFlags(append([]string{"--store", "local", "--data-dir", t.TempDir(),
		"--http-addr", freePort(t), "--gossip-addr", freePort(t), "--remote-addr", freePort(t)}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logger := testkit.NewLogger(t)
	n, err := start(cfg, logger, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { n.stop(logger) }) }
	t.Cleanup(stop)
	return cfg, stop
}

func TestDebugListenerServesProfilesAndTheAPIPortDoesNot(t *testing.T) {
	cfg := startNode(t, "--debug-addr", freePort(t))

	get := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(cfg.DebugAddr, "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index: %d %.200s", code, body)
	}
	if code, body := get(cfg.DebugAddr, "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200s", code, body)
	}
	code, body := get(cfg.DebugAddr, "/debug/vars")
	var vars map[string]json.RawMessage
	if code != http.StatusOK || json.Unmarshal([]byte(body), &vars) != nil || vars["memstats"] == nil {
		t.Fatalf("expvar: %d %.200s", code, body)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine", "/debug/vars"} {
		if code, _ := get(cfg.HTTPAddr, path); code != http.StatusNotFound {
			t.Errorf("API port %s: %d, want 404", path, code)
		}
	}
}
