package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parley-chat/parley/cluster/security"
)

// clusterCreds is a directory made by `parley certs`' code: a CA, a
// certificate per node and a gossip key.
type clusterCreds struct{ dir string }

// clusterCredentials writes credentials for node1 … noden into a new
// temporary directory.
func clusterCredentials(t *testing.T, n int) clusterCreds {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("node%d", i+1))
	}
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: names}); err != nil {
		t.Fatal(err)
	}
	return clusterCreds{dir: dir}
}

// flags are the `parley serve` flags of node name.
func (c clusterCreds) flags(name string) []string {
	f := security.NodeFiles(c.dir, name)
	return []string{"--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key, "--gossip-key-file", filepath.Join(c.dir, security.GossipKeyFile)}
}

// The process-harness calls the security tests make, in one place.

// flagOf is the value of the flag p was started with ("" without it).
func flagOf(p *process, name string) string {
	if i := slices.Index(p.cmd.Args, name); i >= 0 && i+1 < len(p.cmd.Args) {
		return p.cmd.Args[i+1]
	}
	return ""
}

// signal sends sig to p by its pid.
func signal(t *testing.T, p *process, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// killAndRestart SIGKILLs p, waits for it to exit, and starts it again on
// its data dir with the same flags.
func killAndRestart(t *testing.T, p *process) *process {
	t.Helper()
	_ = p.cmd.Process.Kill()
	<-p.exited
	return restart(t, p, dataDir(p))
}

// logOf is what p has written to stdout and stderr so far.
func logOf(p *process) string { return p.log.String() }
