package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// Readiness is what a node's GET /readyz says.
type Readiness struct {
	Status  string   `json:"status"`
	Members []string `json:"-"` // names, sorted
	Placed  []string `json:"-"` // names of the members it places grains on, sorted
	Voters  []string `json:"voters"`
}

// Readyz asks the node's /readyz; an error unless it answers 200.
func (n *Node) Readyz(ctx context.Context) (Readiness, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL("/readyz"), nil)
	if err != nil {
		return Readiness{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Readiness{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Readiness
		Members []struct {
			Name   string
			Placed bool
		} `json:"members"`
	}
	if resp.StatusCode != http.StatusOK {
		return Readiness{}, fmt.Errorf("%s /readyz: %d", n.Name, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return Readiness{}, fmt.Errorf("%s /readyz: %w", n.Name, err)
	}
	r := body.Readiness
	for _, m := range body.Members {
		r.Members = append(r.Members, m.Name)
		if m.Placed {
			r.Placed = append(r.Placed, m.Name)
		}
	}
	slices.Sort(r.Members)
	slices.Sort(r.Placed)
	slices.Sort(r.Voters)
	return r, nil
}

// WaitReady polls every node until it is ready and sees all the
// cluster's nodes as members, places grains on all of them and, with the replicated store, as voters
// (the leader adds them within about a second); at most timeout. It fails
// at once, with the end of its log, when a node exits.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	var want []string
	for _, n := range c.Nodes {
		want = append(want, n.Name)
	}
	slices.Sort(want)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, n := range c.Nodes {
		err := n.poll(ctx, func() error {
			r, err := n.Readyz(ctx)
			switch {
			case err != nil:
				return err
			case !slices.Equal(r.Members, want):
				return fmt.Errorf("%s sees members %v, want %v", n.Name, r.Members, want)
			case !slices.Equal(r.Placed, want):
				return fmt.Errorf("%s places grains on %v, want %v", n.Name, r.Placed, want)
			case len(r.Voters) > 0 && !slices.Equal(r.Voters, want):
				return fmt.Errorf("%s lists voters %v, want %v", n.Name, r.Voters, want)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// poll calls cond every 100 ms until it returns nil, ctx ends or the node
// exits.
func (n *Node) poll(ctx context.Context, cond func() error) error {
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("%s exited (%s); its log ends:\n%s", n.Name, n.cmd.ProcessState, n.LogTail(10))
		default:
		}
		last := cond()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (%w); its log ends:\n%s", n.Name, last, ctx.Err(), n.LogTail(10))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LogTail is the last lines lines of the node's log, indented.
func (n *Node) LogTail(lines int) string {
	b, _ := os.ReadFile(n.LogPath())
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "    " + strings.Join(all[max(0, len(all)-lines):], "\n    ")
}
