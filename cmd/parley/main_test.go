package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/persistence/badgerstore"
	"github.com/parley-chat/parley/persistence/raftstore"
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

// keyTenants writes a tenants file of one tenant, acme, whose API key is
// "k", with rateLimit (JSON) as its limits, or the defaults when empty.
func keyTenants(t *testing.T, rateLimit string) string {
	t.Helper()
	limits := ""
	if rateLimit != "" {
		limits = `, "rateLimit": ` + rateLimit
	}
	file := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(file, []byte(`{"tenants": [{"id": "acme", "apiKeys": [{"id": "web", "hash": "`+
		tenants.HashKey("k")+`"}]`+limits+`}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
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
	store, err := badgerstore.Open(badgerstore.Options{Dir: lockedDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	replicatedDir := t.TempDir()
	replicated, err := raftstore.Open(raftstore.Config{NodeID: "other", Dir: replicatedDir, BindAddr: freePort(t), Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replicated.Close() })

	free := func() []string {
		return []string{"--http-addr", freePort(t), "--gossip-addr", freePort(t), "--remote-addr", freePort(t), "--raft-addr", freePort(t), "--data-dir", t.TempDir()}
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"bad duration", []string{"--mock-token-delay", "soon"}, `invalid value "soon" for flag -mock-token-delay`},
		{"bad log format", []string{"--log-format", "xml"}, `--log-format: "xml" is not text or json`},
		{"zero idle timeout", []string{"--session-idle-timeout", "0s"}, `--session-idle-timeout: 0s is not positive`},
		{"zero limiter idle timeout", []string{"--limiter-idle-timeout", "0s"}, `--limiter-idle-timeout: 0s is not positive`},
		{"negative limiter bound", []string{"--limiter-max-active", "-1"}, `--limiter-max-active: -1 is negative`},
		{"negative heartbeat", []string{"--sse-heartbeat", "-1s"}, `--sse-heartbeat: -1s is not positive`},
		{"zero body read timeout", []string{"--body-read-timeout", "0s"}, `--body-read-timeout: 0s is not positive`},
		{"no connections", []string{"--max-connections", "0"}, `--max-connections: 0 is not positive`},
		{"public debug address", []string{"--debug-addr", "0.0.0.0:6060"}, `--debug-addr: "0.0.0.0:6060" is not a loopback address`},
		{"debug port in use", append(free(), "--debug-addr", busy), "--debug-addr " + busy + ": port already in use"},
		{"bad watermark", []string{"--min-free-disk", "lots"}, `invalid value "lots" for flag -min-free-disk`},
		{"bad join", []string{"--join", "nohost"}, `--join: "nohost" is not host:port`},
		{"stray argument", []string{"now"}, "serve takes no arguments"},
		{"unreadable tenants file", []string{"--tenants", filepath.Join(t.TempDir(), "missing.json")}, "--tenants: open"},
		{"http port in use", append(free(), "--http-addr", busy), "--http-addr " + busy + ": port already in use"},
		{"gossip port in use", append(free(), "--gossip-addr", busy), "--gossip-addr " + busy + ": port already in use"},
		{"remote port in use", append(free(), "--remote-addr", busy), "--remote-addr " + busy + ": port already in use"},
		{"raft port in use", append(free(), "--raft-addr", busy), "--raft-addr " + busy + ": port already in use"},
		{"bad store", []string{"--store", "s3"}, `--store: "s3" is not replicated or local`},
		{"bad raft address", []string{"--raft-addr", "8300"}, `--raft-addr: "8300" is not host:port`},
		{"data dir in use", append(free(), "--data-dir", replicatedDir), "--data-dir " + replicatedDir},
		{"local data dir in use", append(free(), "--store", "local", "--data-dir", lockedDir), "--data-dir " + lockedDir},
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

func TestFirstRunWritesADemoTenantAndShowsItsKeyOnce(t *testing.T) {
	cfg := serveConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:8080"}
	var out bytes.Buffer
	reg, err := loadTenants(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	key := ""
	for _, f := range strings.Fields(out.String()) {
		if strings.HasPrefix(f, "pk_dev_") {
			key = f
			break
		}
	}
	if tenant, _, ok := reg.Authenticate(key); !ok || tenant.ID != demoTenant {
		t.Fatalf("printed key %q does not authenticate as %q; output:\n%s", key, demoTenant, out.String())
	}
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "tenants.json"))
	if err != nil || strings.Contains(string(raw), key) {
		t.Fatalf("tenants.json must hold the hash, never the key (err %v)", err)
	}

	out.Reset()
	again, err := loadTenants(cfg, &out)
	if err != nil || out.Len() != 0 {
		t.Fatalf("second run: err %v, printed %q", err, out.String())
	}
	if _, _, ok := again.Authenticate(key); !ok {
		t.Fatal("second run lost the demo key")
	}
}

func TestHashKey(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"hash-key"}, strings.NewReader("abc\n"), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("hash %q", got)
	}
	stdout.Reset()
	if code := run([]string{"hash-key"}, strings.NewReader(""), &stdout, &stderr); code != exitBadRun {
		t.Fatalf("empty stdin: exit %d", code)
	}
}

func TestBadTenantsFileStopsTheNodeNamingTheField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(path, []byte(`{"tenants": [{"id": "acme", "apiKeys": [{"id": "web", "hash": "plain-text-key"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr := runServe(t, "--tenants", path, "--http-addr", freePort(t), "--gossip-addr", freePort(t), "--remote-addr", freePort(t), "--raft-addr", freePort(t), "--data-dir", t.TempDir())
	if code != exitBadRun || !strings.Contains(stderr, "tenants[0].apiKeys[0].hash") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// A model config the node cannot use stops it at start, naming the field:
// a bad provider, baseURL or fallback in the file, or a key variable the
// environment lacks.
func TestBadModelConfigStopsTheNodeNamingTheField(t *testing.T) {
	hash := `"apiKeys": [{"id": "web", "hash": "sha256:` + strings.Repeat("a", 64) + `"}]`
	cases := []struct{ name, model, want string }{
		{"unknown provider", `{"provider": "anthropic"}`, "tenants[0].model.provider"},
		{"unparsable baseURL", `{"provider": "openai", "name": "m", "baseURL": "localhost:11434"}`, "tenants[0].model.baseURL"},
		{"fallback without a name", `{"provider": "openai", "name": "m", "fallbacks": [{"provider": "openai"}]}`, "tenants[0].model.fallbacks[0].name"},
		{"missing key variable", `{"provider": "openai", "name": "m", "apiKeyEnv": "PARLEY_TEST_UNSET_KEY"}`, "tenants[0].model.apiKeyEnv: the API key environment variable is not set: PARLEY_TEST_UNSET_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tenants.json")
			if err := os.WriteFile(path, []byte(`{"tenants": [{"id": "acme", `+hash+`, "model": `+tc.model+`}]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stderr := runServe(t, "--tenants", path, "--http-addr", freePort(t), "--gossip-addr", freePort(t), "--remote-addr", freePort(t), "--raft-addr", freePort(t), "--data-dir", t.TempDir())
			if code != exitBadRun || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}
