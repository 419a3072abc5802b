package cluster_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/actors/testkit/countergrain"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/cluster/security"
)

// secureKit is a test cluster whose nodes run TLS and a gossip key.
type secureKit struct {
	*testkit.Cluster
	dir       string                     // CA, certificates of node-0 … node-(max-1), gossip.key
	ids       map[int]*security.Identity // node -> its identity
	gossipKey []byte                     // given to the nodes started from now on
}

// secureCluster starts n nodes with TLS and a gossip key from dir, which
// holds certificates for node-0 … node-(max-1).
func secureCluster(t *testing.T, n, max int) (*secureKit, string, map[int]*security.Identity) {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for i := range max {
		names = append(names, fmt.Sprintf("node-%d", i))
	}
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: names}); err != nil {
		t.Fatal(err)
	}
	key, err := security.LoadGossipKey(dir + "/" + security.GossipKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	k := &secureKit{dir: dir, ids: map[int]*security.Identity{}, gossipKey: key}
	k.Cluster = testkit.NewCluster(t, n, testkit.WithKinds(countergrain.NewKind), testkit.WithConfig(func(i int, cfg *cluster.Config) {
		id, err := security.LoadIdentity(cfg.NodeName, security.NodeFiles(dir, cfg.NodeName), cfg.Logger)
		if err != nil {
			t.Fatal(err)
		}
		k.ids[i] = id
		cfg.TLS = id
		cfg.GossipKey = k.gossipKey
	}))
	return k, dir, k.ids
}

func memberNames(n *cluster.Node) []string {
	var out []string
	for _, m := range n.Members() {
		out = append(out, m.Name)
	}
	return out
}

func TestGossipWithoutTheKeyCannotJoin(t *testing.T) {
	c, _, _ := secureCluster(t, 2, 2)
	before := memberNames(c.Node(0))

	for _, tc := range []struct {
		name string
		key  []byte
	}{{"no key", nil}, {"another key", bytes.Repeat([]byte{7}, 32)}} {
		t.Run(tc.name, func(t *testing.T) {
			mc := memberlist.DefaultLocalConfig()
			mc.Name = "rogue"
			mc.BindAddr, mc.BindPort = "127.0.0.1", 0
			mc.Label = "testkit"
			mc.Logger = nil
			mc.LogOutput = io.Discard
			if tc.key != nil {
				mc.SecretKey = tc.key
			}
			// It claims a raft address, as a would-be voter does.
			mc.Delegate = rogueMeta(`{"id":"rogue","remote":"127.0.0.1:1","raft":"127.0.0.1:2"}`)
			rogue, err := memberlist.Create(mc)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rogue.Shutdown() }()
			if n, err := rogue.Join([]string{c.Node(0).GossipAddr()}); err == nil || n > 0 {
				t.Fatalf("a node with %s joined (%d contacted)", tc.name, n)
			}
			if got := rogue.NumMembers(); got != 1 {
				t.Fatalf("the rogue learnt %d members", got)
			}
			for i := range 2 {
				if got := memberNames(c.Node(i)); !slices.Equal(got, before) {
					t.Fatalf("node %d sees %v, want %v", i, got, before)
				}
			}
		})
	}
}

type rogueMeta string

func (m rogueMeta) NodeMeta(int) []byte               { return []byte(m) }
func (rogueMeta) NotifyMsg([]byte)                    {}
func (rogueMeta) GetBroadcasts(int, int) [][]byte     { return nil }
func (rogueMeta) LocalState(bool) []byte              { return nil }
func (rogueMeta) MergeRemoteState(buf []byte, _ bool) {}

func TestRemoteAnswersNoPlaintextAndNoForeignCA(t *testing.T) {
	c, _, _ := secureCluster(t, 1, 1)
	addr := c.Node(0).RemoteAddr()
	mustIncrement(t, c.Node(0), "counter-1")

	other := t.TempDir()
	if _, err := security.Generate(security.GenerateOptions{Dir: other, Names: []string{"node-1"}}); err != nil {
		t.Fatal(err)
	}
	stranger, err := security.LoadIdentity("node-1", security.NodeFiles(other, "node-1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		creds grpc.DialOption
	}{
		{"plaintext", grpc.WithTransportCredentials(insecure.NewCredentials())},
		{"another CA", grpc.WithTransportCredentials(credentials.NewTLS(stranger.ClientConfig()))},
		{"no client certificate", grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := grpc.NewClient(addr, tc.creds)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			client := remote.NewRemotingClient(conn)
			if res, err := client.ListProcesses(ctx, &remote.ListProcessesRequest{Pattern: ""}); err == nil {
				t.Fatalf("ListProcesses answered: %v", res)
			}
			stream, err := client.Receive(ctx)
			if err == nil {
				if err = stream.Send(&remote.RemoteMessage{}); err == nil {
					_, err = stream.Recv()
				}
			}
			if err == nil {
				t.Fatal("the Receive stream answered")
			}
		})
	}

	// Raw bytes: an HTTP/2 preface gets nothing back but the end of the
	// connection (or a TLS alert).
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = raw.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(raw)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a plaintext connection was left open")
	}
	if len(got) > 0 && got[0] != 0x15 {
		t.Fatalf("the remote answered plaintext with %q", got)
	}
	// The node still serves its members.
	if got := mustIncrement(t, c.Node(0), "counter-1"); got.Value != 2 {
		t.Fatalf("counter = %d, want 2", got.Value)
	}
}

func TestRotatedCertificateAndGossipKeyKeepTheClusterServing(t *testing.T) {
	c, dir, ids := secureCluster(t, 2, 3)
	owned := ownedBy(t, c.Cluster, c.Node(1), 3)
	for _, id := range owned {
		mustIncrement(t, c.Node(0), id)
	}

	old := c.Node(1).RemoteAddr()
	serial := ids[1].Certificate().SerialNumber
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: []string{"node-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := ids[1].Reload(); err != nil {
		t.Fatal(err)
	}
	if ids[1].Certificate().SerialNumber.Cmp(serial) == 0 {
		t.Fatal("the reload kept the old certificate")
	}
	// A new gossip key, given to both: each sends with it and still reads
	// the old one.
	newKey := bytes.Repeat([]byte{42}, 32)
	for i := range 2 {
		if err := c.Node(i).UseGossipKey(newKey); err != nil {
			t.Fatal(err)
		}
		if got := c.Node(i).GossipKeys(); got != 2 {
			t.Fatalf("node %d decrypts with %d keys, want 2", i, got)
		}
	}

	// A node that joins now knows only the new key, and opens new
	// connections to node-1, which presents its new certificate.
	c.gossipKey = newKey
	added := c.AddNodes(1)
	c.WaitConverged(0)
	joiner := c.Node(added[0])
	// The grains node-1 owns now (the joiner took some of the others):
	// the joiner's calls reach the same activation on node-1 twice.
	for _, id := range ownedBy(t, c.Cluster, c.Node(1), 3) {
		first := mustIncrement(t, joiner, id)
		if got := mustIncrement(t, joiner, id); got.Value != first.Value+1 {
			t.Fatalf("%s = %d then %d through the new node", id, first.Value, got.Value)
		}
	}
	if c.Node(1).RemoteAddr() != old {
		t.Fatal("node-1 restarted")
	}
	// And node-1 reaches the new node's grains with its new certificate.
	for _, id := range ownedBy(t, c.Cluster, joiner, 2) {
		mustIncrement(t, c.Node(1), id)
	}
}
