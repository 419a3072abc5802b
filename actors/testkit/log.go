package testkit

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// NewLogger returns a slog.Logger that writes into the test's log (shown
// for failing tests and with -v). Its level is PARLEY_TEST_LOG (debug, info,
// warn, error; warn when unset), so a run that needs the cluster's chatter
// sets PARLEY_TEST_LOG=debug.
//
// Lines logged after the test has finished — nodes still shutting down —
// are dropped instead of panicking the test binary.
func NewLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	level := slog.LevelWarn
	if v := os.Getenv("PARLEY_TEST_LOG"); v != "" {
		_ = level.UnmarshalText([]byte(strings.ToUpper(v)))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}
