package testkit_test

import (
	"os"
	"strings"
	"testing"
)

// docs/testing.md shows example_cluster_test.go in full; this keeps the
// page from drifting away from code that compiles and passes.
func TestDocsTestingShowsTheExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/testing.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_cluster_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```go\n"+string(example)+"```") {
		t.Fatal("docs/testing.md no longer shows example_cluster_test.go: paste the file into it again")
	}
}
