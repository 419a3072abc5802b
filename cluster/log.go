package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// memberlistLogger routes memberlist's "[LEVEL] memberlist: text" lines into
// slog. memberlist logs every probe and push/pull at DEBUG and routine events
// at INFO; both become Debug so a healthy cluster is quiet, while WARN and ERR
// keep their level.
func memberlistLogger(logger *slog.Logger) *log.Logger {
	return log.New(memberlistWriter{logger: logger}, "", 0)
}

type memberlistWriter struct{ logger *slog.Logger }

func (w memberlistWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(bytes.TrimRight(p, "\n")))
	level := slog.LevelDebug
	switch {
	case strings.HasPrefix(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.HasPrefix(line, "[ERR"):
		level = slog.LevelError
	}
	if strings.Contains(line, "use of closed network connection") {
		// memberlist's gossip goroutine racing its own shutdown: routine.
		level = slog.LevelDebug
	}
	if i := strings.Index(line, "] "); i >= 0 && strings.HasPrefix(line, "[") {
		line = line[i+2:]
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.logger.Log(context.Background(), level, line)
	return len(p), nil
}

// protoactorHandler is the slog.Handler Proto.Actor logs through. Proto.Actor
// logs every topology member, placement and partition event at Info, and
// the routine noise of a member coming or going (connections closing, gossip
// to a member that just left) at Warn or Error, which would bury Parley's own
// lines and cry wolf on every deploy. Those become Debug; its other warnings
// and errors keep their level.
type protoactorHandler struct{ slog.Handler }

// churn are Proto.Actor messages that a membership change produces by
// design.
var churn = map[string]bool{
	"EndpointWriter lost connection":         true,
	"EndpointWriter failed to connect":       true,
	"sendGossipForMember failed":             true,
	"Got gossip request from unknown member": true,
	"EndpointWatcher handling terminated":    true,
}

func (h protoactorHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, l)
}

func (h protoactorHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo || (r.Level > slog.LevelInfo && churn[r.Message]) {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h protoactorHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return protoactorHandler{h.Handler.WithAttrs(attrs)}
}

func (h protoactorHandler) WithGroup(name string) slog.Handler {
	return protoactorHandler{h.Handler.WithGroup(name)}
}
