package model

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels of the package.
var (
	// ErrUpstreamFailed wraps every failure of a reply's upstream calls:
	// every entry of a chain failed before its first token, or the one
	// that answered failed after it. errors.As finds the *UpstreamError
	// of the last attempt.
	ErrUpstreamFailed = errors.New("upstream model failed")
	// ErrNoAPIKey reports an apiKeyEnv that names an unset or empty
	// environment variable.
	ErrNoAPIKey = errors.New("the API key environment variable is not set")
)

// Upstream error codes: a bounded set, used as a metrics label.
const (
	CodeRateLimited     = "rate_limited"     // HTTP 429
	CodeServerError     = "server_error"     // HTTP 5xx
	CodeClientError     = "client_error"     // any other HTTP 4xx (a bad key, an unknown model)
	CodeTimeout         = "timeout"          // no complete answer within timeoutSeconds
	CodeConnection      = "connection"       // refused, reset, or ended before the reply finished
	CodeInvalidResponse = "invalid_response" // a chunk that is not a chat.completion.chunk, or an error chunk
	CodeTooLarge        = "too_large"        // a response over MaxResponseBytes
)

// UpstreamError is one failed call to an upstream model.
type UpstreamError struct {
	Model  string // the entry's name
	Code   string // one of the Code constants above
	Status int    // the HTTP status, 0 when there was none
	// RetryAfter is the delay the upstream asked for (Retry-After or
	// retry-after-ms), 0 when it named none.
	RetryAfter time.Duration
	Err        error
}

func (e *UpstreamError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("model %s: %s (HTTP %d): %v", e.Model, e.Code, e.Status, e.Err)
	}
	return fmt.Sprintf("model %s: %s: %v", e.Model, e.Code, e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// retryable reports whether the same entry is worth calling again: it was
// rate limited or had a server error, which a later call may not meet.
func (e *UpstreamError) retryable() bool {
	return e.Code == CodeRateLimited || e.Code == CodeServerError
}
