package security_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/cluster/security"
)

func generate(t *testing.T, dir string, opts security.GenerateOptions, names ...string) {
	t.Helper()
	opts.Dir, opts.Names = dir, names
	if _, err := security.Generate(opts); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, dir, name string) *security.Identity {
	t.Helper()
	id, err := security.LoadIdentity(name, security.NodeFiles(dir, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestGenerateReusesTheCAAndGossipKeyAndKeepsSecretsPrivate(t *testing.T) {
	dir := t.TempDir()
	generate(t, dir, security.GenerateOptions{Hosts: []string{"10.0.0.7", "node1.internal"}}, "node1")
	ca1, _ := os.ReadFile(filepath.Join(dir, security.CAFile))
	key1, _ := os.ReadFile(filepath.Join(dir, security.GossipKeyFile))

	out, err := security.Generate(security.GenerateOptions{Dir: dir, Names: []string{"node2"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reused) != 2 {
		t.Fatalf("reused %v, want the CA and the gossip key", out.Reused)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, security.CAFile))
	key2, _ := os.ReadFile(filepath.Join(dir, security.GossipKeyFile))
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(key1, key2) {
		t.Fatal("a second run replaced the CA or the gossip key")
	}
	for _, f := range []string{security.CAKeyFile, security.GossipKeyFile, "node1-key.pem", "node2-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	// Both nodes trust each other: one CA.
	n1, n2 := load(t, dir, "node1"), load(t, dir, "node2")
	if _, err := handshake(t, n1.ServerConfig(), n2.ClientConfig()); err != nil {
		t.Fatalf("node2 -> node1: %v", err)
	}
	cert := n1.Certificate()
	if !strings.Contains(strings.Join(cert.DNSNames, ","), "node1.internal") || len(cert.IPAddresses) != 2 {
		t.Fatalf("SANs %v %v, want node1, localhost, node1.internal, 127.0.0.1, 10.0.0.7", cert.DNSNames, cert.IPAddresses)
	}
	if k, err := security.LoadGossipKey(filepath.Join(dir, security.GossipKeyFile)); err != nil || len(k) != 32 {
		t.Fatalf("gossip key: %d bytes, %v", len(k), err)
	}
}

func TestLoadIdentityNamesTheFileAndTheReason(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	generate(t, dir, security.GenerateOptions{}, "node1", "node2")
	generate(t, other, security.GenerateOptions{}, "node1")
	expired := t.TempDir()
	generate(t, expired, security.GenerateOptions{Now: time.Now().Add(-48 * time.Hour), NodeValidity: 24 * time.Hour}, "node1")

	files := security.NodeFiles(dir, "node1")
	cases := []struct {
		name  string
		node  string
		files security.Files
		role  string
		want  error
	}{
		{"missing CA", "node1", security.Files{CA: filepath.Join(dir, "nope.pem"), Cert: files.Cert, Key: files.Key}, "ca", os.ErrNotExist},
		{"missing key", "node1", security.Files{CA: files.CA, Cert: files.Cert, Key: filepath.Join(dir, "nope.pem")}, "key", os.ErrNotExist},
		{"key of another node", "node1", security.Files{CA: files.CA, Cert: files.Cert, Key: security.NodeFiles(dir, "node2").Key}, "key", security.ErrKeyMismatch},
		{"certificate of another node", "node1", security.NodeFiles(dir, "node2"), "cert", security.ErrNameMismatch},
		{"certificate of another CA", "node1", security.Files{CA: files.CA, Cert: security.NodeFiles(other, "node1").Cert, Key: security.NodeFiles(other, "node1").Key}, "cert", security.ErrNotSignedByCA},
		{"expired certificate", "node1", security.NodeFiles(expired, "node1"), "cert", security.ErrExpired},
		{"certificate as CA", "node1", security.Files{CA: files.Key, Cert: files.Cert, Key: files.Key}, "ca", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := security.LoadIdentity(tc.node, tc.files, nil)
			var fe *security.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FileError", err)
			}
			if fe.Role != tc.role {
				t.Errorf("role %q, want %q (%v)", fe.Role, tc.role, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// handshake runs one TLS 1.3 handshake over a pipe, returning what the
// client saw and the server's error (or the client's when the server had
// none).
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3 reports a refused client certificate on the
			// client's first read; read to learn it.
			_, _ = s.Write([]byte("x"))
		}
		srvErr <- err
		_ = a.Close()
	}()
	c := tls.Client(b, client)
	err := c.Handshake()
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 1))
	}
	if e := <-srvErr; e != nil {
		return c.ConnectionState(), e
	}
	return c.ConnectionState(), err
}

func TestPeersOfAnotherCAOrWithExpiredCertificatesAreRefused(t *testing.T) {
	dir, other, expired := t.TempDir(), t.TempDir(), t.TempDir()
	generate(t, dir, security.GenerateOptions{}, "node1", "node2")
	generate(t, other, security.GenerateOptions{}, "node2")
	// An expired certificate from the cluster's own CA: issued by the
	// same CA files, back-dated.
	for _, f := range []string{security.CAFile, security.CAKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		_ = os.WriteFile(filepath.Join(expired, f), b, 0o600)
	}
	generate(t, expired, security.GenerateOptions{Now: time.Now().Add(-48 * time.Hour), NodeValidity: 24 * time.Hour}, "node3")
	n1, n2, stranger := load(t, dir, "node1"), load(t, dir, "node2"), load(t, other, "node2")

	if _, err := handshake(t, n1.ServerConfig(), stranger.ClientConfig()); err == nil {
		t.Fatal("a client of another CA was accepted")
	}
	if _, err := handshake(t, stranger.ServerConfig(), n2.ClientConfig()); err == nil {
		t.Fatal("a server of another CA was accepted")
	}
	plain := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	if _, err := handshake(t, n1.ServerConfig(), plain); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, GetClientCertificate: n2.ClientConfig().GetClientCertificate}
	if _, err := handshake(t, n1.ServerConfig(), old); err == nil {
		t.Fatal("TLS 1.2 was accepted")
	}
	// The expired certificate cannot be loaded, so present it by hand.
	pair, err := tls.LoadX509KeyPair(security.NodeFiles(expired, "node3").Cert, security.NodeFiles(expired, "node3").Key)
	if err != nil {
		t.Fatal(err)
	}
	withExpired := n2.ClientConfig()
	withExpired.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	if _, err := handshake(t, n1.ServerConfig(), withExpired); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired client certificate: %v, want refused as expired", err)
	}

	state, err := handshake(t, n1.ServerConfig(), n2.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := security.PeerNamed(state, "node1"); err != nil {
		t.Fatal(err)
	}
	if err := security.PeerNamed(state, "node2"); !errors.Is(err, security.ErrNameMismatch) {
		t.Fatalf("PeerNamed(node2) on node1's certificate: %v", err)
	}
}

func TestReloadUsesTheNewCertificateAndKeepsTheOldOnError(t *testing.T) {
	dir := t.TempDir()
	generate(t, dir, security.GenerateOptions{}, "node1", "node2")
	n1, n2 := load(t, dir, "node1"), load(t, dir, "node2")
	before := n1.Certificate().SerialNumber

	generate(t, dir, security.GenerateOptions{}, "node1") // rotated: same CA, new key
	if err := n1.Reload(); err != nil {
		t.Fatal(err)
	}
	if n1.Certificate().SerialNumber.Cmp(before) == 0 {
		t.Fatal("Reload kept the old certificate")
	}
	state, err := handshake(t, n1.ServerConfig(), n2.ClientConfig())
	if err != nil {
		t.Fatalf("peer refused the rotated certificate: %v", err)
	}
	if state.PeerCertificates[0].SerialNumber.Cmp(n1.Certificate().SerialNumber) != 0 {
		t.Fatal("the handshake presented the old certificate")
	}

	if err := os.WriteFile(security.NodeFiles(dir, "node1").Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	serving := n1.Certificate().SerialNumber
	if err := n1.Reload(); err == nil {
		t.Fatal("Reload took a broken key")
	}
	if n1.Certificate().SerialNumber.Cmp(serving) != 0 {
		t.Fatal("a failed Reload changed the certificate in use")
	}
	if _, err := handshake(t, n1.ServerConfig(), n2.ClientConfig()); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}

func TestRefusedIsRateLimited(t *testing.T) {
	dir := t.TempDir()
	generate(t, dir, security.GenerateOptions{}, "node1")
	var buf bytes.Buffer
	id, err := security.LoadIdentity("node1", security.NodeFiles(dir, "node1"), slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		id.Refused("raft", "10.0.0.9:5555", errors.New("certificate expired"))
	}
	id.Refused("remote", "10.0.0.9:5555", errors.New("certificate expired"))
	if n := strings.Count(buf.String(), "peer refused"); n != 2 {
		t.Fatalf("%d log lines for 101 refusals on two planes, want 2:\n%s", n, buf.String())
	}
	// An expired certificate's error carries the current time: still one
	// reason.
	buf.Reset()
	for i := range 5 {
		id.Refused("raft", "10.0.0.9:5555", fmt.Errorf("tls: failed to verify certificate: %w", x509.CertificateInvalidError{
			Reason: x509.Expired, Detail: fmt.Sprintf("current time 12:00:0%d is after 11:00:00", i)}))
	}
	if n := strings.Count(buf.String(), "peer refused"); n != 1 {
		t.Fatalf("%d log lines for 5 refusals of one expired certificate, want 1:\n%s", n, buf.String())
	}
}
