package ports

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestFreeNeverReturnsAPortTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 2*BlockSize + 10 { // crosses into a third block
		addr, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
}

// TestTwoProcessesGetDisjointPorts runs this test binary again as a second
// process, told to try this process's block first, while this one holds
// it: none of the child's ports is one of ours.
func TestTwoProcessesGetDisjointPorts(t *testing.T) {
	if first := os.Getenv("PORTS_CHILD_FIRST_BLOCK"); first != "" {
		// Try the parent's block first: only its lock keeps us out.
		n, _ := strconv.Atoi(first)
		firstBlock = func(int) int { return n }
		for range 50 {
			addr, err := Free()
			if err != nil {
				t.Fatal(err)
			}
			os.Stdout.WriteString("ADDR " + addr + "\n")
		}
		return
	}
	mine := map[string]bool{}
	for range 50 {
		addr, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		mine[addr] = true
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestTwoProcessesGetDisjointPorts$", "-test.v")
	mu.Lock()
	block := (current[0]/BlockSize*BlockSize - lowest) / BlockSize
	mu.Unlock()
	cmd.Env = append(os.Environ(), "PORTS_CHILD_FIRST_BLOCK="+strconv.Itoa(block))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		addr, ok := strings.CutPrefix(line, "ADDR ")
		if !ok {
			continue
		}
		n++
		if mine[addr] {
			t.Fatalf("the child process was given %s, one of this process's ports", addr)
		}
	}
	if n != 50 {
		t.Fatalf("the child reported %d ports, want 50:\n%s", n, out)
	}
}
