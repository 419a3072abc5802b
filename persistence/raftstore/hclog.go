package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter is the hclog.Logger that hashicorp/raft, its transport and
// its snapshot store write to, forwarding every line to slog. Raft logs each
// election, each peer it starts replicating to and each snapshot at Info;
// those become Debug so that a healthy member is quiet (the store logs
// leader changes itself, at Info). Warnings and errors keep their level.
type hclogAdapter struct {
	logger *slog.Logger
	name   string
	args   []any // from With, in hclog's key, value, … form
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLog(logger *slog.Logger, name string) *hclogAdapter {
	return &hclogAdapter{logger: logger, name: name}
}

// slogLevel maps hclog's levels; Trace, Debug and Info become Debug.
func slogLevel(level hclog.Level) (slog.Level, bool) {
	switch level {
	case hclog.Warn:
		return slog.LevelWarn, true
	case hclog.Error:
		return slog.LevelError, true
	case hclog.Off:
		return 0, false
	}
	return slog.LevelDebug, true
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	lvl, ok := slogLevel(level)
	ctx := context.Background()
	if !ok || !a.logger.Enabled(ctx, lvl) {
		return
	}
	attrs := make([]any, 0, 2+len(a.args)+len(args))
	attrs = append(attrs, "component", a.name)
	attrs = appendPairs(attrs, a.args)
	attrs = appendPairs(attrs, args)
	a.logger.Log(ctx, lvl, msg, attrs...)
}

// appendPairs appends hclog's key, value pairs, formatting hclog.Format
// values and giving a lone trailing value a key of its own.
func appendPairs(dst, args []any) []any {
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			return append(dst, "extra", args[i])
		}
		key := fmt.Sprint(args[i])
		switch v := args[i+1].(type) {
		case hclog.Format:
			if len(v) > 0 {
				if f, ok := v[0].(string); ok {
					dst = append(dst, key, fmt.Sprintf(f, v[1:]...))
					continue
				}
			}
			dst = append(dst, key, fmt.Sprint(v...))
		default:
			dst = append(dst, key, v)
		}
	}
	return dst
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(level hclog.Level) bool {
	lvl, ok := slogLevel(level)
	return ok && a.logger.Enabled(context.Background(), lvl)
}

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []any { return a.args }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.args = append(append([]any{}, a.args...), args...)
	return &c
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is ignored: the slog handler decides what is written.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Debug, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each line written to it, at the
// level its "[WARN]"-style prefix names (Debug without one).
func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return stdWriter{a}
}

type stdWriter struct{ a *hclogAdapter }

func (w stdWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		msg := strings.TrimSpace(string(line))
		level := hclog.Debug
		for prefix, l := range map[string]hclog.Level{"[ERR]": hclog.Error, "[ERROR]": hclog.Error, "[WARN]": hclog.Warn} {
			if strings.HasPrefix(msg, prefix) {
				level, msg = l, strings.TrimSpace(strings.TrimPrefix(msg, prefix))
			}
		}
		if msg != "" {
			w.a.Log(level, msg)
		}
	}
	return len(p), nil
}
