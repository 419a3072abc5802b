package raftstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
)

// TestReadDiskHoldsEveryAcknowledgedAppend: with one of three members
// down, an acknowledged append is on both others' disks, so the disk of
// either, read alone after every member has stopped abruptly, holds all of
// them: from the log alone, and from a snapshot plus the log after it.
func TestReadDiskHoldsEveryAcknowledgedAppend(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot %v", snapshot), func(t *testing.T) {
			c := newTestCluster(t, 3, nil)
			c.kill(2)
			key := session(1)
			const n = 20
			for seq := range uint64(n) {
				appendAcked(t, c.store(int(seq%2)), key, seq, fmt.Sprintf("m%d", seq+1))
				if snapshot && seq == n/2 {
					for _, i := range []int{0, 1} {
						if err := c.store(i).Snapshot(); err != nil {
							t.Fatalf("snapshot %d: %v", i, err)
						}
					}
				}
			}
			c.kill(0)
			c.kill(1)

			for _, i := range []int{0, 1} {
				disk, err := ReadDisk(c.nodes[i].dir, testkit.NewLogger(t))
				if err != nil {
					t.Fatalf("ReadDisk %s: %v", c.nodes[i].id, err)
				}
				got, err := disk.Page(t.Context(), key, 0, 100, t0.AddDate(-1, 0, 0))
				if cerr := disk.Close(); cerr != nil {
					t.Errorf("Close: %v", cerr)
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != n || got[0].Seq != n || got[n-1].Seq != 1 {
					t.Fatalf("%s's disk holds %d messages (%v), want all %d", c.nodes[i].id, len(got), seqsOf(got), n)
				}
			}
		})
	}
}

// appendAcked appends one message after last through s until the append
// is acknowledged, as a grain does: two members of three have no margin,
// so on a loaded machine the leader may step down mid-write, and an
// append whose outcome is unknown may have been applied (then the retry
// meets a sequence conflict and Meta shows the message).
func appendAcked(t *testing.T, s *Store, key persistence.SessionKey, last uint64, id string) {
	t.Helper()
	testkit.Eventually(t, waitTimeout, func() error {
		_, err := s.Append(t.Context(), key, last, []persistence.Message{msg(last+1, id)}, persistence.AppendOptions{})
		if errors.Is(err, persistence.ErrSequenceConflict) {
			meta, merr := s.Meta(t.Context(), key)
			if merr == nil && meta.LastSeq == last+1 {
				return nil // the earlier try was applied
			}
			t.Fatalf("append %s after %d: %v (meta %+v, %v)", id, last, err, meta, merr)
		}
		return err
	})
}

func seqsOf(ms []persistence.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func TestReadDiskRefusesADirWithoutAMember(t *testing.T) {
	if _, err := ReadDisk(t.TempDir(), nil); err == nil {
		t.Fatal("ReadDisk of an empty dir: no error")
	}
}
