package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/raftstore"
)

// TestACrashedNodesOwnDiskHoldsEveryAcknowledgedMessage: the replicated
// store acknowledges a write once two of three members have it on disk.
// With node2 down, every acknowledged write is therefore on node3's disk.
// node3 is SIGKILLed, node1 too (no peer is left to answer for it), and
// node3's data dir is read alone, without raft or a quorum
// (raftstore.ReadDisk, docs/durability.md): every acknowledged message is
// there, each user message followed by its reply.
func TestACrashedNodesOwnDiskHoldsEveryAcknowledgedMessage(t *testing.T) {
	t.Parallel()
	nodes := replicatedCluster(t)
	kill(t, nodes[1])
	victim, peer := nodes[2], nodes[0]
	waitMembers(t, []*process{peer, victim}, []string{"node1", "node3"})

	acked := map[string][]string{}
	for i := range 12 {
		sid := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("crash", i))).String()
		for j := range 2 {
			msg := fmt.Sprintf("session %d message %d", i, j)
			writeUntilAcked(t, []*process{peer, victim}, i+j, sid, msg, fmt.Sprintf("c%d-%d", i, j))
			acked[sid] = append(acked[sid], msg)
		}
	}
	kill(t, victim)
	kill(t, peer)

	disk, err := raftstore.ReadDisk(victim.DataDir(), testkit.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	for sid, msgs := range acked {
		page, err := disk.Page(t.Context(), persistence.SessionKey{Tenant: "acme", Session: sid}, 0, 100, time.Time{})
		if err != nil {
			t.Fatalf("session %s on node3's disk: %v", sid, err)
		}
		// Newest first: reply, user message, reply, user message…
		var users []string
		for k := len(page) - 1; k >= 0; k-- {
			m := page[k]
			if m.Role != persistence.RoleUser {
				continue
			}
			users = append(users, m.Content)
			if k == 0 || page[k-1].Role != persistence.RoleAssistant {
				t.Fatalf("session %s on node3's disk: no reply after %q", sid, m.Content)
			}
		}
		if fmt.Sprint(users) != fmt.Sprint(msgs) {
			t.Fatalf("session %s on node3's disk holds %q, want every acknowledged %q", sid, users, msgs)
		}
	}
}
