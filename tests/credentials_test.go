package tests

import (
	"os"
	"slices"
	"testing"

	"github.com/parley-chat/parley/internal/harness"
)

// clusterCreds are the credentials a test cluster runs with.
type clusterCreds = harness.Credentials

// clusterCredentials writes credentials for node1 … noden into a new
// temporary directory.
func clusterCredentials(t *testing.T, n int) clusterCreds {
	t.Helper()
	c, err := harness.WriteCredentials(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
