// Command parley runs a Parley node.
//
//	parley serve [flags]     run a node (flags and PARLEY_* variables: parley serve -h)
//	parley hash-key          print the tenants-file hash of the API key on stdin
//	parley certs --out DIR NAME...  write the cluster's CA, node certificates and gossip key
//
// Exit codes: 0 after a clean shutdown, 2 when the node cannot start (bad
// flag, unreadable file, port in use; one line on stderr names the cause),
// 1 when it fails after starting.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitBadRun  = 2
	programName = "parley"
)

// usageError is a start-up failure: the fault is in how parley was run.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitBadRun
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr)
	case "hash-key":
		err = hashKey(stdin, stdout)
	case "certs":
		err = certs(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	default:
		err = usageError{fmt.Errorf("unknown command %q (want serve, hash-key or certs)", args[0])}
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return exitBadRun
	default:
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return exitFailed
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Parley: a cluster-native, multi-tenant chat-session backend.

Usage:
  parley serve [flags]   run a node; "parley serve -h" lists the flags
  parley hash-key        read an API key on stdin, print the hash a tenants file stores
  parley certs --out DIR NAME... [--host H]
                         write a cluster CA, a certificate per node and the gossip key
`)
}
