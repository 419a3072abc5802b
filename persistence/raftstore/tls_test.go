package raftstore

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/rpc"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster/security"
)

// certDir writes a CA and certificates for names into a new directory.
func certDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: names}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func identity(t testing.TB, dir, name string) *security.Identity {
	t.Helper()
	id, err := security.LoadIdentity(name, security.NodeFiles(dir, name), testkit.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// withTLS makes a member present and check id on its port.
func withTLS(cfg *Config, id *security.Identity) {
	cfg.ServerTLS = id.ServerConfig()
	cfg.ClientTLS = id.ClientConfig()
	cfg.OnTLSRefused = func(remote string, err error) { id.Refused("raft", remote, err) }
}

// newTLSCluster starts n members, each with its own certificate.
func newTLSCluster(t *testing.T, n int) (*testCluster, string, map[string]*security.Identity) {
	t.Helper()
	var names []string
	for i := range n {
		names = append(names, "node"+string(rune('0'+i)))
	}
	dir := certDir(t, names...)
	ids := map[string]*security.Identity{}
	for _, name := range names {
		ids[name] = identity(t, dir, name)
	}
	c := newTestClusterEach(t, n, func(id string, cfg *Config) { withTLS(cfg, ids[id]) })
	return c, dir, ids
}

// expectNothing reads from c until it ends and fails if any byte other
// than a TLS alert record came back.
func expectNothing(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection was left open")
	}
	if len(got) > 0 && got[0] != 0x15 { // 0x15: a TLS alert record
		t.Fatalf("got %d bytes back (%q), want none", len(got), got)
	}
}

func TestRaftPortAnswersNoPlaintextAndNoForeignCA(t *testing.T) {
	t.Parallel()
	c, _, _ := newTLSCluster(t, 2)
	leader := c.store(c.waitLeader())
	key := session(1)
	appendOne(t, c.store(c.follower()), key, 0, "m1") // forwarded, over TLS

	// A plaintext net/rpc client behind the forwarding byte: no answer.
	conn, err := net.Dial("tcp", leader.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte{connForward}); err != nil {
		t.Fatal(err)
	}
	client := rpc.NewClient(conn)
	var reply []byte
	if err := client.Call(forwardServiceName+".Read", encodeEnvelope(time.Second, []byte{1}), &reply); err == nil {
		t.Fatalf("a plaintext forwarded read was answered: %q", reply)
	}
	_ = client.Close()

	// Plaintext raft: the R byte and a heartbeat-sized frame.
	conn, err = net.Dial("tcp", leader.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(append([]byte{connRaft, 0}, make([]byte, 64)...)); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, conn)

	// A TLS client whose certificate comes from another CA.
	stranger := identity(t, certDir(t, "node1"), "node1")
	for _, kind := range []byte{connForward, connRaft} {
		tc, err := tls.Dial("tcp", leader.RaftAddr(), stranger.ClientConfig())
		if err == nil {
			_, _ = tc.Write([]byte{kind})
			_, err = tc.Read(make([]byte, 1))
			_ = tc.Close()
		}
		if err == nil {
			t.Fatalf("kind %c: a client of another CA got an answer", kind)
		}
	}

	// Nothing changed: the one message written over TLS is all there is.
	checkHistory(t, leader, key, map[uint64]string{1: "m1"}, 1)
	if v := leader.Voters(); len(v) != 2 {
		t.Fatalf("voters %v", v)
	}
}

func TestMemberWhoseCertificateNamesAnotherIsNotMadeAVoter(t *testing.T) {
	t.Parallel()
	dir := certDir(t, "node0", "node1", "node2")
	ids := map[string]*security.Identity{
		"node0": identity(t, dir, "node0"),
		// A member that calls itself node1 but holds node2's certificate
		// (a valid one of the cluster CA).
		"node1": identity(t, dir, "node2"),
	}
	c := newTestClusterEach(t, 1, func(id string, cfg *Config) { withTLS(cfg, ids[id]) })
	c.nodes = append(c.nodes, &testNode{id: "node1", dir: t.TempDir()})
	c.open(1, "127.0.0.1:0", false)
	leader := c.store(0)
	members := map[string]string{"node0": leader.RaftAddr(), "node1": c.nodes[1].addr}

	r := newReconciler(leader, ReconcilerConfig{Members: func() map[string]string { return members }, DeadAfter: time.Hour, Logger: testkit.NewLogger(t)})
	testkit.Eventually(t, waitTimeout, func() error {
		if !leader.IsLeader() {
			return errors.New("node0 not leader yet")
		}
		return nil
	})
	for range 3 {
		r.reconcile(time.Now())
	}
	if v := leader.Voters(); !slices.Equal(v, []string{"node0"}) {
		t.Fatalf("voters %v: node1 was made a voter with node2's certificate", v)
	}
	if err := leader.VerifyPeer(t.Context(), "node1", c.nodes[1].addr); !errors.Is(err, security.ErrNameMismatch) {
		t.Fatalf("VerifyPeer: %v, want ErrNameMismatch", err)
	}

	// The same member with its own certificate is added.
	c.kill(1)
	ids["node1"] = identity(t, dir, "node1")
	c.open(1, "127.0.0.1:0", false)
	members["node1"] = c.nodes[1].addr
	r.reconcile(time.Now())
	if v := leader.Voters(); !slices.Equal(v, []string{"node0", "node1"}) {
		t.Fatalf("voters %v, want node0 and node1", v)
	}
}

func TestRotatedCertificateKeepsTheMemberServing(t *testing.T) {
	t.Parallel()
	c, dir, ids := newTLSCluster(t, 3)
	c.waitLeader()
	key := session(1)
	appendOne(t, c.store(0), key, 0, "m1")

	old := ids["node1"].Certificate().SerialNumber
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: []string{"node1"}}); err != nil {
		t.Fatal(err)
	}
	if err := ids["node1"].Reload(); err != nil {
		t.Fatal(err)
	}
	// A new connection to node1 sees the new certificate, and accepts it.
	conn, err := tls.Dial("tcp", c.store(1).RaftAddr(), ids["node0"].ClientConfig())
	if err != nil {
		t.Fatalf("dial node1 after its rotation: %v", err)
	}
	serial := conn.ConnectionState().PeerCertificates[0].SerialNumber
	_ = conn.Close()
	if serial.Cmp(old) == 0 {
		t.Fatal("node1 still presents its old certificate")
	}
	// Cut every connection of node1 so that the peers must accept the new
	// certificate to go on: restarted on its dir and address.
	c.kill(1)
	c.restart(1)
	for seq := uint64(1); seq < 4; seq++ {
		appendOne(t, c.store(int(seq)%3), key, seq, "m"+string(rune('1'+seq)))
	}
	c.waitSameCopies(key)
	checkHistory(t, c.store(1), key, map[uint64]string{1: "m1", 2: "m2", 3: "m3", 4: "m4"}, 4)
}
