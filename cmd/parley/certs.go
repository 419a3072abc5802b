package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/parley-chat/parley/cluster/security"
)

// certs is `parley certs --out DIR NAME... [--host H]...`: a cluster CA
// (kept when DIR has one), a certificate and key for each node NAME, and
// the gossip key (kept when DIR has one). Flags and names may come in any
// order.
func certs(args []string, stdout, stderr io.Writer) error {
	var (
		out   string
		hosts []string
		names []string
	)
	fs := flag.NewFlagSet("parley certs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&out, "out", "", "directory to write ca.pem, ca-key.pem, NAME.pem, NAME-key.pem and gossip.key into")
	fs.Func("host", "an extra IP or DNS name every certificate carries (repeat, or separate with commas)", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
		return nil
	})
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stderr, "Usage: parley certs --out DIR NAME... [--host H]...\n\nWrites a cluster CA (reused when DIR has one), NAME.pem and NAME-key.pem for each\nnode NAME (SANs: NAME, localhost, 127.0.0.1 and every --host), and gossip.key\n(reused when DIR has one). Private keys and the gossip key are written 0600.")
				fs.VisitAll(func(f *flag.Flag) { fmt.Fprintf(stderr, "  --%s\n    \t%s\n", f.Name, f.Usage) })
				return errHelp
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if out == "" {
		return usageError{errors.New("certs: --out DIR is required")}
	}
	if len(names) == 0 {
		return usageError{errors.New("certs: name at least one node (its --node-name)")}
	}
	for _, n := range names {
		if strings.ContainsAny(n, "/\\ ") || strings.HasPrefix(n, ".") {
			return usageError{fmt.Errorf("certs: %q is not a node name", n)}
		}
	}
	g, err := security.Generate(security.GenerateOptions{Dir: out, Names: names, Hosts: hosts})
	if err != nil {
		return usageError{err}
	}
	for _, f := range g.Reused {
		fmt.Fprintf(stdout, "kept   %s\n", f)
	}
	for _, f := range g.Written {
		fmt.Fprintf(stdout, "wrote  %s\n", f)
	}
	return nil
}
