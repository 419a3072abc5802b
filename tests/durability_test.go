package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
)

const durableKey = "durable-key"

// replicatedCluster starts three parley processes sharing one tenants file,
// each running a member of the raft-replicated store; node1 bootstraps it
// and the others are added as voters. It returns once all three vote.
func replicatedCluster(t *testing.T) []*process {
	t.Helper()
	tenantsFile := filepath.Join(t.TempDir(), "tenants.json")
	body := `{"tenants": [{"id": "acme", "apiKeys": [{"id": "k", "hash": "` + tenants.HashKey(durableKey) + `"}],
		"rateLimit": {"perMinute": 1000000, "burst": 1000000, "user": {"perMinute": 1000000}, "ip": {"perMinute": 1000000}}}]}`
	if err := os.WriteFile(tenantsFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := startClusterWith(t, buildParley(t), 3, func(i int) []string {
		args := []string{"--tenants", tenantsFile, "--raft-addr", testkit.FreeAddr(t), "--mock-token-delay", "0"}
		if i == 0 {
			args = append(args, "--raft-bootstrap")
		}
		return args
	})
	for _, p := range nodes {
		testkit.Eventually(t, 30*time.Second, func() error {
			voters, err := votersOf(p)
			if err != nil {
				return err
			}
			if !slices.Equal(voters, []string{"node1", "node2", "node3"}) {
				return fmt.Errorf("%s: voters %v", p.name, voters)
			}
			return nil
		})
	}
	return nodes
}

func votersOf(p *process) ([]string, error) {
	resp, err := http.Get(p.url("/readyz"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct{ Voters []string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s /readyz: %d %v", p.name, resp.StatusCode, err)
	}
	return body.Voters, nil
}

// chat posts one message (stream false) through p; it returns whether the
// reply was acknowledged (200).
func chat(t *testing.T, p *process, sessionID, message string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", p.url("/chat"), strings.NewReader(fmt.Sprintf(`{"sessionId": %q, "message": %q, "stream": false}`, sessionID, message)))
	req.Header.Set("Authorization", "Bearer "+durableKey)
	req.Header.Set("Content-Type", "application/json")
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func historyOf(p *process, sessionID string) ([]string, error) {
	req, _ := http.NewRequest("GET", p.url("/chat/"+sessionID+"/history?limit=100"), nil)
	req.Header.Set("Authorization", "Bearer "+durableKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("history via %s: %d", p.name, resp.StatusCode)
	}
	var body struct {
		Messages []struct{ Role, Content string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var users []string
	for _, m := range body.Messages {
		if m.Role == "user" {
			users = append(users, m.Content)
		}
	}
	return users, nil
}

func TestAcknowledgedMessagesSurviveSIGKILLWithReplication(t *testing.T) {
	t.Parallel()
	nodes := replicatedCluster(t)
	sessions := make([]string, 30)
	for i := range sessions {
		sessions[i] = uuid.NewString()
	}
	acked := map[string][]string{}
	send := func(round int, via []*process) {
		for i, sid := range sessions {
			msg := fmt.Sprintf("round %d message %d", round, i)
			if chat(t, via[i%len(via)], sid, msg) == 200 {
				acked[sid] = append(acked[sid], msg)
			}
		}
	}
	send(1, nodes)
	killed := time.Now()
	if err := nodes[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// How long until every session, a third of them owned by the dead
	// node, is served again through a survivor (docs/durability.md).
	testkit.Eventually(t, 10*time.Second, func() error {
		for _, sid := range sessions {
			if _, err := historyOf(nodes[0], sid); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("every session served again %s after the SIGKILL", time.Since(killed).Round(10*time.Millisecond))
	send(2, nodes[:2])
	t.Logf("round 2 through the survivors finished %s after the SIGKILL", time.Since(killed).Round(10*time.Millisecond))

	for _, sid := range sessions {
		for _, p := range nodes[:2] {
			testkit.Eventually(t, 10*time.Second, func() error {
				got, err := historyOf(p, sid)
				if err != nil {
					return err
				}
				for _, want := range acked[sid] {
					if !slices.Contains(got, want) {
						return fmt.Errorf("acknowledged %q missing from %s via %s (has %v)", want, sid, p.name, got)
					}
				}
				if len(got) != len(slices.Compact(slices.Clone(got))) {
					return fmt.Errorf("duplicate in %v", got)
				}
				return nil
			})
		}
	}
	total := 0
	for _, msgs := range acked {
		total += len(msgs)
	}
	if total < len(sessions) {
		t.Fatalf("only %d messages acknowledged", total)
	}
	t.Logf("%d acknowledged messages all present on both survivors", total)
}

// checkAll waits until every acknowledged message is in its session's
// history read through p.
func checkAll(t *testing.T, p *process, acked map[string][]string) {
	t.Helper()
	for sid, msgs := range acked {
		testkit.Eventually(t, 20*time.Second, func() error {
			got, err := historyOf(p, sid)
			if err != nil {
				return err
			}
			for _, want := range msgs {
				if !slices.Contains(got, want) {
					return fmt.Errorf("acknowledged %q missing from %s via %s", want, sid, p.name)
				}
			}
			return nil
		})
	}
}

func TestReplicatedNodeRejoinsRebuildsAndTwoLostRefuseWrites(t *testing.T) {
	t.Parallel()
	nodes := replicatedCluster(t)
	acked := map[string][]string{}
	write := func(round int, via []*process, n int) {
		for i := range n {
			sid := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint(i))).String()
			msg := fmt.Sprintf("round %d message %d", round, i)
			if chat(t, via[i%len(via)], sid, msg) == 200 {
				acked[sid] = append(acked[sid], msg)
			}
		}
	}
	write(1, nodes, 12)

	// Killed, written without it, restarted on its data dir: it catches up.
	_ = nodes[2].cmd.Process.Signal(syscall.SIGKILL)
	<-nodes[2].exited
	write(2, nodes[:2], 12)
	nodes[2] = restart(t, nodes[2], dataDir(nodes[2]))
	checkAll(t, nodes[2], acked)

	// Killed again and restarted with its disk lost: it rebuilds its copy
	// from the others, as the same voter.
	_ = nodes[2].cmd.Process.Signal(syscall.SIGKILL)
	<-nodes[2].exited
	write(3, nodes[:2], 12)
	nodes[2] = restart(t, nodes[2], filepath.Join(t.TempDir(), "empty"))
	checkAll(t, nodes[2], acked)
	for _, p := range nodes {
		checkAll(t, p, acked)
	}

	// Two of three lost: the survivor refuses writes it cannot make
	// durable (503), within its deadline, instead of acknowledging them.
	for _, p := range nodes[1:] {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
	start := time.Now()
	refused := 0
	for i := range 3 {
		sid := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint(i))).String()
		switch code := chat(t, nodes[0], sid, "with two of three down"); code {
		case 200:
			t.Fatalf("a write was acknowledged with two of three nodes down")
		case http.StatusServiceUnavailable:
			refused++
		default:
			t.Fatalf("status %d with two of three nodes down, want 503 within the client's 10 s", code)
		}
	}
	t.Logf("2 of 3 down: %d writes refused in %s", refused, time.Since(start).Round(time.Millisecond))
}
