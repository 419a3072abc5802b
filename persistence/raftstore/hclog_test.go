package raftstore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	a := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft")
	named := a.Named("net").With("peer", "n2")

	a.Info("entering follower state", "term", 3)
	named.Warn("failed to contact", "time", hclog.Fmt("%dms", 150))
	a.Error("odd", "lonely")
	a.StandardLogger(nil).Print("[WARN] from the standard logger")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=DEBUG msg="entering follower state" component=raft term=3`,
		`level=WARN msg="failed to contact" component=raft.net peer=n2 time=150ms`,
		`level=ERROR msg=odd component=raft extra=lonely`,
		`level=WARN msg="from the standard logger" component=raft`,
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s\nwant it to contain %s", i, lines[i], w)
		}
	}

	quiet := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), "raft")
	if quiet.IsDebug() || quiet.IsInfo() || !quiet.IsWarn() || quiet.GetLevel() != hclog.Warn {
		t.Fatalf("a Warn handler reports debug %v, info %v, warn %v, level %v", quiet.IsDebug(), quiet.IsInfo(), quiet.IsWarn(), quiet.GetLevel())
	}
}
