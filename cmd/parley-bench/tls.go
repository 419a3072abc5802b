package main

import (
	"fmt"
	"path/filepath"

	"github.com/parley-chat/parley/cluster/security"
)

// clusterCredentials writes a CA, a certificate for node1 … noden and a
// gossip key under dir (the code of `parley certs`), and returns the
// `parley serve` flags of each node name: a bench cluster runs secured,
// as a production one must.
func clusterCredentials(dir string, n int) (func(name string) []string, error) {
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("node%d", i+1))
	}
	certs := filepath.Join(dir, "certs")
	if _, err := security.Generate(security.GenerateOptions{Dir: certs, Names: names}); err != nil {
		return nil, err
	}
	return func(name string) []string {
		f := security.NodeFiles(certs, name)
		return []string{"--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key, "--gossip-key-file", filepath.Join(certs, security.GossipKeyFile)}
	}, nil
}
