package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chat/parley/persistence"
)

// runServe runs `parley serve args…` in-process and returns its exit code
// and stderr.
func runServe(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"serve"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stderr.String()
}

func listen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeRefusesToStartWithOneLineAndExitCode2(t *testing.T) {
	busy := listen(t)
	lockedDir := t.TempDir()
	store, err := persistence.OpenBadger(persistence.BadgerOptions{Dir: lockedDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	free := func() []string {
		return []string{"--http-addr", freePort(t), "--gossip-addr", freePort(t), "--remote-addr", freePort(t), "--data-dir", t.TempDir()}
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"bad duration", []string{"--mock-token-delay", "soon"}, `invalid value "soon" for flag -mock-token-delay`},
		{"bad log format", []string{"--log-format", "xml"}, `--log-format: "xml" is not text or json`},
		{"bad join", []string{"--join", "nohost"}, `--join: "nohost" is not host:port`},
		{"stray argument", []string{"now"}, "serve takes no arguments"},
		{"unreadable tenants file", []string{"--tenants", filepath.Join(t.TempDir(), "missing.json")}, "--tenants: open"},
		{"http port in use", append(free(), "--http-addr", busy), "--http-addr " + busy + ": port already in use"},
		{"gossip port in use", append(free(), "--gossip-addr", busy), "--gossip-addr " + busy + ": port already in use"},
		{"remote port in use", append(free(), "--remote-addr", busy), "--remote-addr " + busy + ": port already in use"},
		{"data dir in use", append(free(), "--data-dir", lockedDir), "--data-dir " + lockedDir},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runServe(t, tc.args...)
			if code != exitBadRun {
				t.Errorf("exit code %d, want %d", code, exitBadRun)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "parley: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want one line starting \"parley: \" containing %q", stderr, tc.want)
			}
		})
	}
}

func TestServeReadsPARLEYVariablesAndFlagsWin(t *testing.T) {
	t.Setenv("PARLEY_LOG_FORMAT", "json")
	t.Setenv("PARLEY_NODE_NAME", "from-env")
	t.Setenv("PARLEY_JOIN", "127.0.0.1:1,127.0.0.1:2")
	cfg, err := parseServeFlags([]string{"--node-name", "from-flag"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogFormat != "json" || cfg.NodeName != "from-flag" || len(cfg.Join) != 2 {
		t.Fatalf("got format %q, name %q, join %v", cfg.LogFormat, cfg.NodeName, cfg.Join)
	}

	t.Setenv("PARLEY_MOCK_TOKEN_DELAY", "later")
	code, stderr := runServe(t)
	if code != exitBadRun || !strings.Contains(stderr, `PARLEY_MOCK_TOKEN_DELAY="later"`) {
		t.Fatalf("bad variable: exit %d, stderr %q", code, stderr)
	}
}

func TestUnknownCommandExits2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"server"}, strings.NewReader(""), &stdout, &stderr); code != exitBadRun {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), `unknown command "server"`) {
		t.Fatalf("stderr %q", stderr.String())
	}
}
