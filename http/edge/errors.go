package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/cluster"
)

// This file is the edge's one error map: every error a handler or
// middleware meets becomes its status, code, message, details and
// Retry-After here (answerFor), written as a JSON body (writeErr) or as
// an SSE `error` event (errorEvent). docs/http.md lists the answers.

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error   ErrorInfo `json:"error"`
	TraceID string    `json:"traceId"`
}

// ErrorInfo says what went wrong: Code is stable and meant for programs,
// Message is for people, Details lists per-field problems when there are
// any.
type ErrorInfo struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorDetail is one problem with one field of a request.
type ErrorDetail struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error codes of the contract (docs/http.md lists them with their status).
const (
	CodeBadRequest          = "bad_request"            // 400: malformed JSON, unknown field, wrong type, bad query
	CodeValidation          = "validation_failed"      // 400: well-formed but invalid fields (see details)
	CodeUnauthorized        = "unauthorized"           // 401: missing or unknown API key
	CodeNotFound            = "not_found"              // 404
	CodeRequestTimeout      = "request_timeout"        // 408: the body did not arrive within the read deadline
	CodeMethodNotAllowed    = "method_not_allowed"     // 405
	CodeConflict            = "conflict"               // 409: a reply is already in progress in the session
	CodeTooLarge            = "payload_too_large"      // 413: body over the limit
	CodeUnsupportedType     = "unsupported_media_type" // 415: not application/json
	CodePastReply           = "range_not_satisfiable"  // 416: a resume from past the tokens the reply in progress has written
	CodeRateLimited         = "rate_limited"           // 429
	CodeAuthRateLimited     = "auth_rate_limited"      // 429: too many failed authentications from the client's address
	CodeHeadersTooLarge     = "headers_too_large"      // 431: request line and headers over the limit
	CodeInternal            = "internal"               // 500
	CodeInsufficientStorage = "insufficient_storage"   // 507: the node's disk is below its free-space watermark; reads and deletes still work
	CodeQuotaExceeded       = "quota_exceeded"         // 507: the write would pass one of the tenant's quotas (named in details)
	CodeNotReady            = "not_ready"              // 503 from /readyz
	CodeUpstreamFailed      = "upstream_failed"        // 502 (or an error event): the model failed; docs/models.md
	CodeUnavailable         = "unavailable"            // 503: the session could not be reached; retry
	CodeSlowConsumer        = "slow_consumer"          // SSE only: the client read too slowly
)

// The edge's own errors, for answers no grain client gives.
var (
	// errStalled: the session sent nothing for StallTimeout mid-reply.
	errStalled = errors.New("the session stopped answering; the reply may still be stored in the session's history")
	// errHostLost: the session's node was declared failed mid-reply. The
	// user message is stored, the reply is not.
	// errDraining: this node is shutting down and starts no new reply.
	errDraining = errors.New("this node is shutting down; send the chat again, to another node")
	errHostLost = errors.New("the session's node failed before the reply was finished; your message is stored, the reply is not: send it again, with the same Idempotency-Key to get a reply without storing it twice")
	// errSlowConsumer: the client read a stream too slowly and was let go.
	errSlowConsumer = errors.New("the client read too slowly; the reply is stored in the session's history")
	// errLimiterUnavailable wraps any error of the RateLimiter that is not
	// an answer of its own (a *requestError).
	errLimiterUnavailable = errors.New("rate limiter unavailable; retry")
)

// rateLimited is a request a rate limit refused.
type rateLimited struct {
	scope      string
	retryAfter time.Duration
}

func (e *rateLimited) Error() string { return "rate limit exceeded for scope " + e.scope }

// requestError is an error answer: status, code, message, details, and
// the Retry-After to send (0: none). Code that finds a problem with the
// request itself (the decoder, header checks) returns one directly.
type requestError struct {
	status     int
	code       string
	message    string
	details    []ErrorDetail
	retryAfter time.Duration
}

func (e *requestError) Error() string { return e.message }

func (e *requestError) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		secs := int64((e.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	writeError(w, e.status, e.code, e.message, e.details...)
}

// retry is the Retry-After of every 503: the cluster re-forms, or a node
// drains, within about a second.
const retry = time.Second

// answerFor maps err to its answer, or nil when the client is gone and
// nobody reads one. Unexpected errors are logged here, so handlers only
// pass them on.
func (s *server) answerFor(w http.ResponseWriter, r *http.Request, err error) *requestError {
	var (
		answer  *requestError
		limited *rateLimited
		refused *grains.Error
	)
	unavailable := func(message string) *requestError {
		return &requestError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: message, retryAfter: retry}
	}
	invalid := func(message string, details ...ErrorDetail) *requestError {
		return &requestError{status: http.StatusBadRequest, code: CodeValidation, message: message, details: details}
	}
	switch {
	case errors.As(err, &answer):
		return answer
	case errors.Is(r.Context().Err(), context.Canceled):
		return nil // the client is gone; nobody reads the answer
	case errors.Is(err, errLimiterUnavailable):
		s.cfg.Logger.Error("rate limiter", "err", err, "traceId", w.Header().Get(HeaderTraceID))
		return unavailable(errLimiterUnavailable.Error())
	case errors.As(err, &limited):
		return rateLimitedAnswer(limited)
	case errors.Is(err, errStalled), errors.Is(err, errHostLost), errors.Is(err, errDraining):
		return unavailable(err.Error())
	case errors.Is(err, errSlowConsumer):
		return &requestError{status: http.StatusServiceUnavailable, code: CodeSlowConsumer, message: err.Error()}

	case errors.Is(err, cache.ErrInvalidKey):
		return invalid("request has invalid fields", ErrorDetail{Field: "key", Message: "must be 1 to 512 bytes of UTF-8 without NUL"})
	case errors.Is(err, cache.ErrValueTooLarge):
		return &requestError{status: http.StatusRequestEntityTooLarge, code: CodeTooLarge, message: "cache values are at most 64 KiB"}
	case errors.Is(err, cache.ErrInvalidTTL):
		return invalid(err.Error())
	case errors.Is(err, session.ErrBadIdentity):
		return invalid("request has invalid fields", ErrorDetail{Field: "sessionId", Message: "must be a UUID"})
	case errors.Is(err, ratelimit.ErrBadIdentity):
		return invalid("request has invalid headers", ErrorDetail{Field: "X-User-Id", Message: "must be 1 to 256 bytes of UTF-8 without NUL"})

	case errors.Is(err, session.ErrUpstreamFailed):
		// The model failed: the user message is stored, and so is the
		// partial reply when the failure followed the first token.
		// Retrying may reach a provider that answers; nothing says when.
		return &requestError{status: http.StatusBadGateway, code: CodeUpstreamFailed, message: err.Error()}
	case errors.Is(err, grains.ErrQuotaExceeded):
		quota := grains.QuotaOf(err)
		return &requestError{status: http.StatusInsufficientStorage, code: CodeQuotaExceeded,
			message: "the tenant's storage quota is used up; delete data or wait for it to expire",
			details: []ErrorDetail{{Field: "quotas." + quota, Message: "the tenant's " + quota + " quota is used up"}}}
	case errors.Is(err, grains.ErrConflict):
		return &requestError{status: http.StatusConflict, code: CodeConflict, message: "a reply is already in progress in this session; wait for it to finish"}
	case errors.Is(err, grains.ErrInvalidArgument):
		if errors.As(err, &refused) {
			return invalid(refused.Message)
		}
		return invalid(err.Error())
	case errors.Is(err, grains.ErrUnavailable) && errors.As(err, &refused):
		// The grain answered: its storage failed, or its reply did.
		return unavailable(refused.Message)
	case errors.Is(err, grains.ErrUnavailable), errors.Is(err, context.Canceled):
		// No answer came: the cluster is re-forming or this node is
		// leaving.
		s.cfg.Logger.Warn("grain call failed", "err", err, "traceId", w.Header().Get(HeaderTraceID))
		switch {
		case errors.Is(err, cluster.ErrShuttingDown):
			return unavailable("this node is shutting down; retry on another")
		case errors.Is(err, cluster.ErrHostLost):
			return unavailable("the session's node failed while handling the request; it may or may not have been stored: retry, with the same Idempotency-Key to store it once")
		}
		return unavailable("the session is unavailable; retry shortly")
	}
	s.cfg.Logger.Error("unexpected error", "err", err, "traceId", w.Header().Get(HeaderTraceID))
	return &requestError{status: http.StatusInternalServerError, code: CodeInternal, message: "internal error; quote the trace id when reporting it"}
}

// writeErr answers err as a JSON error body.
func (s *server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	if answer := s.answerFor(w, r, err); answer != nil {
		answer.write(w)
	}
}

// errorEvent is the data of the SSE `error` event that ends a stream with
// err; false when the client is gone.
func (s *server) errorEvent(w http.ResponseWriter, r *http.Request, err error) (ErrorBody, bool) {
	answer := s.answerFor(w, r, err)
	if answer == nil {
		return ErrorBody{}, false
	}
	return ErrorBody{Error: ErrorInfo{Code: answer.code, Message: answer.message, Details: answer.details}, TraceID: w.Header().Get(HeaderTraceID)}, true
}

// writeError writes the contract's error body with status. It is the one
// place error responses are written. The trace id comes from the response
// header withTraceID set, so middleware outside it (recover) reports it too.
// Routes with a dialect of their own (dialect.go) get its shape instead.
func writeError(w http.ResponseWriter, status int, code, message string, details ...ErrorDetail) {
	info := ErrorInfo{Code: code, Message: message, Details: details}
	if d, ok := w.(*dialectWriter); ok {
		writeJSON(w, status, d.body(status, info, w.Header().Get(HeaderTraceID)))
		return
	}
	writeJSON(w, status, ErrorBody{Error: info, TraceID: w.Header().Get(HeaderTraceID)})
}

// writeJSON writes v as the JSON response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
