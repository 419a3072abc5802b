package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/cluster/security"
)

func TestServeIsSecureByDefault(t *testing.T) {
	dir := t.TempDir()
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: []string{"node1"}}); err != nil {
		t.Fatal(err)
	}
	files := security.NodeFiles(dir, "node1")
	creds := []string{"--tls-ca", files.CA, "--tls-cert", files.Cert, "--tls-key", files.Key, "--gossip-key-file", filepath.Join(dir, security.GossipKeyFile)}
	cases := []struct {
		name string
		args []string
		want string // "" means accepted
	}{
		{"loopback without credentials", nil, ""},
		{"loopback with credentials", creds, ""},
		{"gossip on every interface", []string{"--gossip-addr", "0.0.0.0:7946"}, "--gossip-addr 0.0.0.0:7946 not loopback: give --tls-ca, --tls-cert, --tls-key, --gossip-key-file"},
		{"remote on a LAN address", []string{"--remote-addr", "10.1.2.3:8090"}, "--remote-addr 10.1.2.3:8090 not loopback"},
		{"raft on a LAN address", []string{"--raft-addr", "10.1.2.3:8300"}, "--raft-addr 10.1.2.3:8300 not loopback"},
		{"raft address ignored with the local store", []string{"--store", "local", "--raft-addr", "10.1.2.3:8300"}, ""},
		{"exposed with credentials", append([]string{"--gossip-addr", "0.0.0.0:7946"}, creds...), ""},
		{"exposed, insecure on purpose", []string{"--gossip-addr", "0.0.0.0:7946", "--insecure-cluster"}, ""},
		{"half the credentials", []string{"--tls-ca", files.CA, "--tls-cert", files.Cert}, "--tls-ca, --tls-cert given without --tls-key, --gossip-key-file"},
		{"half the credentials, insecure", []string{"--gossip-key-file", files.CA, "--insecure-cluster"}, "given without --tls-ca"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServeFlags(append([]string{"--node-name", "node1"}, tc.args...), os.Stderr)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if err != nil {
				if _, ok := err.(usageError); !ok {
					t.Fatalf("%T is not a usageError (exit 2)", err)
				}
			}
		})
	}

	t.Setenv("PARLEY_GOSSIP_KEY_FILE", filepath.Join(dir, security.GossipKeyFile))
	t.Setenv("PARLEY_TLS_CA", files.CA)
	t.Setenv("PARLEY_TLS_CERT", files.Cert)
	t.Setenv("PARLEY_TLS_KEY", files.Key)
	cfg, err := parseServeFlags([]string{"--node-name", "node1", "--gossip-addr", "0.0.0.0:7946"}, os.Stderr)
	if err != nil || !cfg.Security.enabled() {
		t.Fatalf("PARLEY_TLS_* and PARLEY_GOSSIP_KEY_FILE not read: %v", err)
	}
}

func TestBadCredentialsStopTheNodeNamingTheFlag(t *testing.T) {
	dir, other, expired := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []struct {
		dir  string
		opts security.GenerateOptions
	}{
		{dir, security.GenerateOptions{}},
		{other, security.GenerateOptions{}},
		{expired, security.GenerateOptions{Now: time.Now().Add(-72 * time.Hour), NodeValidity: 24 * time.Hour}},
	} {
		d.opts.Dir, d.opts.Names = d.dir, []string{"node1", "node2"}
		if _, err := security.Generate(d.opts); err != nil {
			t.Fatal(err)
		}
	}
	badKey := filepath.Join(dir, "short.key")
	if err := os.WriteFile(badKey, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n1 := security.NodeFiles(dir, "node1")
	gossip := filepath.Join(dir, security.GossipKeyFile)
	creds := func(ca, cert, key, gossipKey string) []string {
		return []string{"--tls-ca", ca, "--tls-cert", cert, "--tls-key", key, "--gossip-key-file", gossipKey}
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing CA", creds(filepath.Join(dir, "none.pem"), n1.Cert, n1.Key, gossip), "--tls-ca " + filepath.Join(dir, "none.pem") + ": no such file"},
		{"unreadable certificate", creds(n1.CA, dir, n1.Key, gossip), "--tls-cert " + dir + ": is a directory"},
		{"certificate of another node", creds(n1.CA, security.NodeFiles(dir, "node2").Cert, security.NodeFiles(dir, "node2").Key, gossip), `--tls-cert ` + security.NodeFiles(dir, "node2").Cert + `: certificate does not name the node "node1"`},
		{"key of another certificate", creds(n1.CA, n1.Cert, security.NodeFiles(dir, "node2").Key, gossip), "--tls-key " + security.NodeFiles(dir, "node2").Key + ": private key does not match"},
		{"certificate of another CA", creds(n1.CA, security.NodeFiles(other, "node1").Cert, security.NodeFiles(other, "node1").Key, gossip), "not signed by the cluster CA"},
		{"expired certificate", creds(security.NodeFiles(expired, "node1").CA, security.NodeFiles(expired, "node1").Cert, security.NodeFiles(expired, "node1").Key, gossip), "--tls-cert " + security.NodeFiles(expired, "node1").Cert + ": certificate expired"},
		{"short gossip key", creds(n1.CA, n1.Cert, n1.Key, badKey), "--gossip-key-file " + badKey + ": gossip key must be 16, 24 or 32 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--node-name", "node1", "--http-addr", freePort(t), "--gossip-addr", freePort(t), "--remote-addr", freePort(t), "--raft-addr", freePort(t), "--data-dir", t.TempDir()}, tc.args...)
			code, stderr := runServe(t, args...)
			if code != exitBadRun {
				t.Errorf("exit code %d, want %d", code, exitBadRun)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
		})
	}
}

func TestCertsWritesACAPerClusterAndACertificatePerNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"certs", "--out", dir, "node1", "node2", "--host", "10.0.0.5,db.internal"}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "gossip.key", "node1.pem", "node1-key.pem", "node2.pem", "node2-key.pem"} {
		if !strings.Contains(stdout.String(), filepath.Join(dir, f)) {
			t.Errorf("output does not list %s:\n%s", f, stdout.String())
		}
	}
	id, err := security.LoadIdentity("node2", security.NodeFiles(dir, "node2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := id.Certificate(); !strings.Contains(strings.Join(c.DNSNames, " "), "db.internal") || len(c.IPAddresses) != 2 {
		t.Fatalf("SANs %v %v", c.DNSNames, c.IPAddresses)
	}

	// A node added later: the CA and the gossip key are kept.
	stdout.Reset()
	if code := run([]string{"certs", "--out", dir, "node3"}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "kept   "+filepath.Join(dir, "ca.pem")) || !strings.Contains(stdout.String(), "kept   "+filepath.Join(dir, "gossip.key")) {
		t.Fatalf("second run did not keep the CA and key:\n%s", stdout.String())
	}
	if _, err := security.LoadIdentity("node3", security.NodeFiles(dir, "node3"), nil); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"certs", "node1"}, {"certs", "--out", dir}} {
		stderr.Reset()
		if code := run(args, strings.NewReader(""), &stdout, &stderr); code != exitBadRun || strings.Count(stderr.String(), "\n") != 1 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}

func TestInsecureClusterWarnsAtStart(t *testing.T) {
	var logs bytes.Buffer
	logger := newLogger(&logs, "text", "info")
	sec, err := loadSecurity(serveConfig{NodeName: "node1", Security: securityConfig{InsecureCluster: true}}, logger)
	if err != nil || sec != nil {
		t.Fatalf("loadSecurity = %v, %v; want no credentials, no error", sec, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "--insecure-cluster") {
		t.Fatalf("no warning: %q", logs.String())
	}
	logs.Reset()
	if _, err := loadSecurity(serveConfig{NodeName: "node1"}, logger); err != nil || logs.Len() != 0 {
		t.Fatalf("loopback without credentials: %v, logged %q", err, logs.String())
	}
}

func TestReloadRotatesCertificateAndGossipKeyAndKeepsThemOnBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: []string{"node-0"}}); err != nil {
		t.Fatal(err)
	}
	files := security.NodeFiles(dir, "node-0")
	keyFile := filepath.Join(dir, security.GossipKeyFile)
	var logs bytes.Buffer
	logger := newLogger(&logs, "text", "info")
	sec, err := loadSecurity(serveConfig{NodeName: "node-0", Security: securityConfig{TLSCA: files.CA, TLSCert: files.Cert, TLSKey: files.Key, GossipKeyFile: keyFile}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) { sec.apply(cfg) }))
	member := c.Node(0)

	serial := sec.identity.Certificate().SerialNumber
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: []string{"node-0"}}); err != nil {
		t.Fatal(err)
	}
	newKey, err := security.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	sec.reload(member, logger)
	if sec.identity.Certificate().SerialNumber.Cmp(serial) == 0 {
		t.Fatal("the certificate was not reloaded")
	}
	if got := member.GossipKeys(); got != 2 {
		t.Fatalf("%d gossip keys after the rotation, want the new and the old", got)
	}
	sec.reload(member, logger) // the same files again: nothing changes
	if got := member.GossipKeys(); got != 2 {
		t.Fatalf("%d gossip keys after a second reload of the same key", got)
	}

	serial = sec.identity.Certificate().SerialNumber
	_ = os.WriteFile(files.Cert, []byte("not a certificate"), 0o644)
	_ = os.WriteFile(keyFile, []byte("short\n"), 0o600)
	logs.Reset()
	sec.reload(member, logger)
	if sec.identity.Certificate().SerialNumber.Cmp(serial) != 0 || member.GossipKeys() != 2 {
		t.Fatal("bad files replaced the credentials in use")
	}
	if !strings.Contains(logs.String(), "--tls-cert") || !strings.Contains(logs.String(), "--gossip-key-file") {
		t.Fatalf("the log does not name the bad files: %q", logs.String())
	}
}
