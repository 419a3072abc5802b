package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
)

// The one error map gives every error its status, code and Retry-After,
// and the message of the grain that refused, when one did.
func TestErrorMap(t *testing.T) {
	s := &server{cfg: Config{Logger: testkit.NewLogger(t)}}
	callFailed := func(cause error) error { return grains.CallFailed("session chat", cause) }
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
		message    string // "" when not checked
	}{
		{"request error", &requestError{status: 415, code: CodeUnsupportedType, message: "json only"}, 415, CodeUnsupportedType, "", "json only"},
		{"reply in progress", fmt.Errorf("session chat: %w", &grains.Error{Kind: grains.ErrConflict, Message: "busy"}), 409, CodeConflict, "", ""},
		{"grain refused", fmt.Errorf("session history: %w", &grains.Error{Kind: grains.ErrInvalidArgument, Message: "limit 0 is outside 1..100"}), 400, CodeValidation, "", "limit 0 is outside 1..100"},
		{"grain storage failed", &grains.Error{Kind: grains.ErrUnavailable, Message: "clear: storage unavailable"}, 503, CodeUnavailable, "1", "clear: storage unavailable"},
		{"no owner yet", callFailed(cluster.ErrTimeout), 503, CodeUnavailable, "1", "the session is unavailable; retry shortly"},
		{"node leaving", callFailed(cluster.ErrShuttingDown), 503, CodeUnavailable, "1", "this node is shutting down; retry on another"},
		{"host lost mid-call", callFailed(cluster.ErrHostLost), 503, CodeUnavailable, "1", ""},
		{"host lost mid-reply", errHostLost, 503, CodeUnavailable, "1", errHostLost.Error()},
		{"stalled reply", errStalled, 503, CodeUnavailable, "1", errStalled.Error()},
		{"model failed", &session.UpstreamError{Message: "the model failed mid-reply", Model: "m"}, 502, CodeUpstreamFailed, "", "the model failed mid-reply"},
		{"slow consumer", errSlowConsumer, 503, CodeSlowConsumer, "", ""},
		{"bad session id", fmt.Errorf("x: %w", session.ErrBadIdentity), 400, CodeValidation, "", "request has invalid fields"},
		{"bad cache key", fmt.Errorf("%w: key", cache.ErrInvalidKey), 400, CodeValidation, "", "request has invalid fields"},
		{"cache value too large", cache.ErrValueTooLarge, 413, CodeTooLarge, "", ""},
		{"bad ttl", fmt.Errorf("%w: 1ns", cache.ErrInvalidTTL), 400, CodeValidation, "", "invalid cache ttl: 1ns"},
		{"bad user id", ratelimit.ErrBadIdentity, 400, CodeValidation, "", "request has invalid headers"},
		{"limiter down", fmt.Errorf("%w: %w", errLimiterUnavailable, ratelimit.ErrBadRequest), 503, CodeUnavailable, "1", errLimiterUnavailable.Error()},
		{"rate limited", &rateLimited{scope: "user", retryAfter: 1500 * time.Millisecond}, 429, CodeRateLimited, "2", "rate limit exceeded for scope user"},
		{"rate limited now", &rateLimited{scope: "ip"}, 429, CodeRateLimited, "1", ""},
		{"a bug", errors.New("session chat: unexpected reply"), 500, CodeInternal, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set(HeaderTraceID, "t-1")
			s.writeErr(rec, httptest.NewRequest(http.MethodGet, "/", nil), tc.err)
			body := decodeError(t, rec)
			if rec.Code != tc.status || body.Error.Code != tc.code || rec.Header().Get("Retry-After") != tc.retryAfter {
				t.Fatalf("%d %s Retry-After %q, want %d %s %q", rec.Code, body.Error.Code, rec.Header().Get("Retry-After"), tc.status, tc.code, tc.retryAfter)
			}
			if tc.message != "" && body.Error.Message != tc.message {
				t.Fatalf("message %q, want %q", body.Error.Message, tc.message)
			}
		})
	}
}

// When the client has gone, nothing is answered: neither a body nor an
// SSE event.
func TestErrorMapAnswersNobodyWhenTheClientIsGone(t *testing.T) {
	s := &server{cfg: Config{Logger: testkit.NewLogger(t)}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	s.writeErr(rec, r, grains.CallFailed("session chat", context.Canceled))
	if rec.Body.Len() != 0 {
		t.Fatalf("answered %q to a client that is gone", rec.Body.String())
	}
	if _, ok := s.errorEvent(rec, r, errStalled); ok {
		t.Fatal("an error event for a client that is gone")
	}
}
