package tests

import (
	"os"
	"slices"
	"testing"

	"github.com/parley-chat/parley/internal/harness"
)

// clusterCreds are the credentials a test cluster runs with.
type clusterCreds = harness.Credentials

// The process-harness calls the security tests make, in one place.

// flagOf is the value of the flag p was started with ("" without it).
func flagOf(p *process, name string) string {
	args := p.Args()
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// signal sends sig to p by its pid.
func signal(t *testing.T, p *process, sig os.Signal) {
	t.Helper()
	if err := p.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.Name, err)
	}
}

// killAndRestart SIGKILLs p, waits for it to exit, and starts it again on
// its data dir with the same flags.
func killAndRestart(t *testing.T, p *process) *process {
	t.Helper()
	p.Kill()
	return restart(t, p, "")
}

// logOf is what p has written to stdout and stderr so far.
func logOf(p *process) string { return p.Log() }
