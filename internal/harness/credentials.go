package harness

import (
	"fmt"
	"path/filepath"

	"github.com/parley-chat/parley/cluster/security"
)

// Credentials is a directory written by the code of `parley certs`: a
// cluster CA, a certificate and key per node, and a gossip key.
type Credentials struct{ Dir string }

// WriteCredentials writes credentials for node1 … noden into dir (made if
// missing), so that a cluster of n nodes runs secured, as a production
// one must (docs/security.md).
func WriteCredentials(dir string, n int) (Credentials, error) {
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("node%d", i+1))
	}
	if _, err := security.Generate(security.GenerateOptions{Dir: dir, Names: names}); err != nil {
		return Credentials{}, err
	}
	return Credentials{Dir: dir}, nil
}

// Flags are the `parley serve` flags that give node name its credentials.
func (c Credentials) Flags(name string) []string {
	f := security.NodeFiles(c.Dir, name)
	return []string{"--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key, "--gossip-key-file", filepath.Join(c.Dir, security.GossipKeyFile)}
}
