package edge

import (
	"encoding/json"
	"net/http"
)

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
	CodeBadRequest       = "bad_request"            // 400: malformed JSON, unknown field, wrong type, bad query
	CodeValidation       = "validation_failed"      // 400: well-formed but invalid fields (see details)
	CodeUnauthorized     = "unauthorized"           // 401: missing or unknown API key
	CodeNotFound         = "not_found"              // 404
	CodeMethodNotAllowed = "method_not_allowed"     // 405
	CodeConflict         = "conflict"               // 409: a reply is already in progress in the session
	CodeTooLarge         = "payload_too_large"      // 413: body over the limit
	CodeUnsupportedType  = "unsupported_media_type" // 415: not application/json
	CodeRateLimited      = "rate_limited"           // 429
	CodeInternal         = "internal"               // 500
	CodeNotReady         = "not_ready"              // 503 from /readyz
	CodeUnavailable      = "unavailable"            // 503: the session could not be reached; retry
	CodeUpstreamFailed   = "upstream_failed"        // 502 (or an error event): the model failed; docs/models.md
)

// writeError writes the contract's error body with status. It is the one
// place error responses are written. The trace id comes from the response
// header withTraceID set, so middleware outside it (recover) reports it too.
func writeError(w http.ResponseWriter, status int, code, message string, details ...ErrorDetail) {
	writeJSON(w, status, ErrorBody{
		Error:   ErrorInfo{Code: code, Message: message, Details: details},
		TraceID: w.Header().Get(HeaderTraceID),
	})
}

// writeJSON writes v as the JSON response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
