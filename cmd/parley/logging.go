package main

import (
	"io"
	"log/slog"
)

// newLogger returns the process logger: logfmt-style text for people, JSON
// for log pipelines. Proto.Actor's and memberlist's logs reach it through
// the cluster package, which lowers their routine chatter to debug.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
