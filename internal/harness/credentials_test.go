package harness

import (
	"slices"
	"testing"

	"github.com/parley-chat/parley/cluster/security"
)

func TestCredentialsLoadAsEachNode(t *testing.T) {
	c, err := WriteCredentials(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"node1", "node2", "node3"} {
		f := c.Flags(name)
		files := security.Files{CA: f[slices.Index(f, "--tls-ca")+1], Cert: f[slices.Index(f, "--tls-cert")+1], Key: f[slices.Index(f, "--tls-key")+1]}
		if _, err := security.LoadIdentity(name, files, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := security.LoadGossipKey(f[slices.Index(f, "--gossip-key-file")+1]); err != nil {
			t.Fatal(err)
		}
	}
}
