package tests

import (
	"fmt"
	"path/filepath"
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
