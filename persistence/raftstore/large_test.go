package raftstore

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

// The state machine's memtables are small (stateMemTable), and the raft
// log's smaller still (openLogStore): the largest message a session
// stores (a 1 MiB reply) and a batch of the largest user messages still
// fit one write, and read back whole.
func TestTheLargestWritesFitTheStateMachine(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 1, nil)
	s := c.store(0)
	key := session(1)
	big := msg(1, "big")
	big.Content = strings.Repeat("r", 1<<20)
	if _, err := s.Append(t.Context(), key, 0, []persistence.Message{big}, persistence.AppendOptions{}); err != nil {
		t.Fatalf("Append of a 1 MiB message: %v", err)
	}
	var batch []persistence.Message
	for seq := uint64(2); seq <= 9; seq++ {
		m := msg(seq, "user")
		m.Content = strings.Repeat("u", 64<<10)
		batch = append(batch, m)
	}
	if _, err := s.Append(t.Context(), key, 1, batch, persistence.AppendOptions{}); err != nil {
		t.Fatalf("Append of 8 messages of 64 KiB: %v", err)
	}
	page, err := s.Page(t.Context(), key, 0, 100, time.Time{})
	if err != nil || len(page) != 9 || len(page[8].Content) != 1<<20 {
		t.Fatalf("page: %d messages, %v", len(page), err)
	}
}
