package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"github.com/google/uuid"
	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster/security"
)

// credentialsOf is the credentials directory p was started with.
func credentialsOf(p *process) clusterCreds {
	return clusterCreds{Dir: filepath.Dir(flagOf(p, "--tls-ca"))}
}

// planes are p's cluster addresses, as its /readyz lists them.
type planes struct{ gossip, remote, raft string }

func planesOf(t *testing.T, p *process) planes {
	t.Helper()
	resp, err := http.Get(p.URL("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		TLS     *bool `json:"tls"`
		Members []struct{ Name, Remote, Raft string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.TLS == nil || !*body.TLS {
		t.Fatalf("%s /readyz does not say tls: true", flagOf(p, "--node-name"))
	}
	name := flagOf(p, "--node-name")
	for _, m := range body.Members {
		if m.Name == name {
			return planes{gossip: flagOf(p, "--gossip-addr"), remote: m.Remote, raft: m.Raft}
		}
	}
	t.Fatalf("%s is not among its own members", name)
	return planes{}
}

// refusedOnRaft fails unless a forwarded read sent to addr, in the clear
// or with tlsConf, goes unanswered.
func refusedOnRaft(t *testing.T, addr string, tlsConf *tls.Config) {
	t.Helper()
	var conn net.Conn
	var err error
	if tlsConf == nil {
		conn, err = net.Dial("tcp", addr)
	} else {
		conn, err = tls.Dial("tcp", addr, tlsConf)
	}
	if err != nil {
		return // refused at the handshake
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte{'F'}); err != nil {
		return
	}
	client := rpc.NewClient(conn)
	var reply []byte
	if err := client.Call("Raftstore.Read", []byte{1, 0, 0}, &reply); err == nil {
		t.Fatalf("the raft port answered a forwarded read (%d bytes)", len(reply))
	}
}

// refusedOnRemote fails unless a gRPC call to the actor remote at addr
// with creds goes unanswered.
func refusedOnRemote(t *testing.T, addr string, creds credentials.TransportCredentials) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if res, err := remote.NewRemotingClient(conn).ListProcesses(ctx, &remote.ListProcessesRequest{}); err == nil {
		t.Fatalf("the remote answered: %v", res)
	}
}

func TestTLSClusterAnswersNoStranger(t *testing.T) {
	t.Parallel()
	nodes := replicatedCluster(t)
	sid := uuid.NewString()
	if res, detail := chatOnce(nodes[0], sid, "before", false, ""); res != acked {
		t.Fatalf("chat: %s", detail)
	}

	stranger := t.TempDir()
	if _, err := security.Generate(security.GenerateOptions{Dir: stranger, Names: []string{"node1"}}); err != nil {
		t.Fatal(err)
	}
	foreign, err := security.LoadIdentity("node1", security.NodeFiles(stranger, "node1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range nodes {
		addrs := planesOf(t, p)
		refusedOnRaft(t, addrs.raft, nil)
		refusedOnRaft(t, addrs.raft, foreign.ClientConfig())
		refusedOnRemote(t, addrs.remote, insecure.NewCredentials())
		refusedOnRemote(t, addrs.remote, credentials.NewTLS(foreign.ClientConfig()))
	}

	// A certificate of the cluster's own CA, but expired: refused, logged
	// once however often it is tried, and the node goes on.
	creds := credentialsOf(nodes[0])
	if _, err := security.Generate(security.GenerateOptions{Dir: creds.Dir, Names: []string{"old"}, Now: time.Now().Add(-72 * time.Hour), NodeValidity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	expired, err := tls.LoadX509KeyPair(security.NodeFiles(creds.Dir, "old").Cert, security.NodeFiles(creds.Dir, "old").Key)
	if err != nil {
		t.Fatal(err)
	}
	withExpired := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{expired}}
	leaderRaft := planesOf(t, nodes[0]).raft
	for range 20 {
		refusedOnRaft(t, leaderRaft, withExpired)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if n := strings.Count(logOf(nodes[0]), "peer refused"); n == 0 {
			return errors.New("node1 did not log the refused peer")
		}
		return nil
	})
	if n := strings.Count(logOf(nodes[0]), "expired"); n != 1 {
		t.Fatalf("node1 logged the expired certificate %d times for 20 tries, want once:\n%s", n, logOf(nodes[0]))
	}

	// A memberlist node without the gossip key, advertising a raft address.
	mc := memberlist.DefaultLocalConfig()
	mc.Name, mc.BindAddr, mc.BindPort = "rogue", "127.0.0.1", 0
	mc.Label = "parley"
	mc.Logger, mc.LogOutput = nil, io.Discard
	rogue, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rogue.Shutdown() }()
	if n, err := rogue.Join([]string{planesOf(t, nodes[0]).gossip}); err == nil || n > 0 {
		t.Fatalf("a node without the gossip key joined (%d contacted)", n)
	}

	want := []string{"node1", "node2", "node3"}
	waitMembers(t, nodes, want)
	waitVoters(t, nodes, want)
	checkAll(t, nodes[2], map[string][]string{sid: {"before"}})
}

func TestRotatedCertificateOnSIGHUPKeepsTheClusterServing(t *testing.T) {
	t.Parallel()
	nodes := replicatedCluster(t)
	sid := uuid.NewString()
	if res, detail := chatOnce(nodes[1], sid, "before", false, ""); res != acked {
		t.Fatalf("chat: %s", detail)
	}
	creds := credentialsOf(nodes[1])
	peer, err := security.LoadIdentity("node1", security.NodeFiles(creds.Dir, "node1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	raftAddr := planesOf(t, nodes[1]).raft
	serial := func() (string, error) {
		c, err := tls.Dial("tcp", raftAddr, peer.ClientConfig())
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	old, err := serial()
	if err != nil {
		t.Fatal(err)
	}

	if _, err := security.Generate(security.GenerateOptions{Dir: creds.Dir, Names: []string{"node2"}}); err != nil {
		t.Fatal(err)
	}
	// A new gossip key too: node2 sends with it once it has reloaded, and
	// still reads the old one.
	newKey, err := security.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds.Dir, security.GossipKeyFile), newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	signal(t, nodes[1], syscall.SIGHUP)
	testkit.Eventually(t, 10*time.Second, func() error {
		s, err := serial()
		if err != nil {
			return err
		}
		if s == old {
			return errors.New("node2 still presents its old certificate")
		}
		return nil
	})

	// node1 and node3 start afresh, knowing only the new gossip key: they
	// can join only through node2's rotated keyring, and every connection
	// they open to node2 meets its new certificate.
	for _, i := range []int{0, 2} {
		nodes[i] = killAndRestart(t, nodes[i])
	}
	want := []string{"node1", "node2", "node3"}
	waitMembers(t, nodes, want)
	waitVoters(t, nodes, want)
	for i, p := range nodes {
		testkit.Eventually(t, 20*time.Second, func() error {
			if res, detail := chatOnce(p, sid, fmt.Sprintf("after %d", i), false, fmt.Sprintf("k%d", i)); res != acked {
				return fmt.Errorf("chat through node%d: %s", i+1, detail)
			}
			return nil
		})
	}
	checkAll(t, nodes[0], map[string][]string{sid: {"before", "after 0", "after 1", "after 2"}})
}
