package edge

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/actors/session"
)

// messageJSON is one message as the HTTP contract shows it.
type messageJSON struct {
	ID         string `json:"id"`
	Seq        uint64 `json:"seq"`
	Role       string `json:"role"`
	Content    string `json:"content"`
	CreatedAt  string `json:"createdAt"`
	TokenCount int    `json:"tokenCount"`
	// FinishReason is an assistant message's: stop, length, stopped or
	// error (docs/models.md).
	FinishReason string `json:"finishReason,omitempty"`
}

// historyResponse is the body of GET /chat/{sessionId}/history.
type historyResponse struct {
	Messages   []messageJSON `json:"messages"`
	NextCursor *string       `json:"nextCursor"`
}

func toJSON(m *session.Message) messageJSON {
	return messageJSON{
		ID:           m.Id,
		Seq:          m.Seq,
		Role:         m.Role,
		Content:      m.Content,
		CreatedAt:    time.Unix(0, m.CreatedAtUnixNano).UTC().Format(time.RFC3339Nano),
		TokenCount:   int(m.TokenCount),
		FinishReason: finishReason(m),
	}
}

// finishReason is an assistant message's finish reason; one stored before
// they were kept was a finished reply (M1 stored no other).
func finishReason(m *session.Message) string {
	if m.FinishReason == "" && m.Role == "assistant" {
		return "stop"
	}
	return m.FinishReason
}

// sessionIdentity reads {sessionId} and builds the grain identity of the
// authenticated tenant's session: the tenant comes only from the key.
func sessionIdentity(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := session.Identity(tenantOf(r.Context()).ID, strings.ToLower(chi.URLParam(r, "sessionId")))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeValidation, "request has invalid fields", ErrorDetail{Field: "sessionId", Message: "must be a UUID"})
		return "", false
	}
	return id, true
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	identity, ok := sessionIdentity(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	req := &session.History{Limit: session.DefaultHistoryLimit}
	var details []ErrorDetail
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > session.MaxHistoryLimit {
			details = append(details, ErrorDetail{Field: "limit", Message: "must be a whole number from 1 to 100"})
		}
		req.Limit = int32(n)
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			details = append(details, ErrorDetail{Field: "before", Message: "must be a nextCursor from an earlier page"})
		}
		req.Before = n
	}
	if details != nil {
		writeError(w, http.StatusBadRequest, CodeValidation, "request has invalid query parameters", details...)
		return
	}
	res, err := s.cfg.Grains.Request(r.Context(), identity, session.Kind, req)
	if err != nil {
		s.grainError(w, r, err)
		return
	}
	page, ok := res.(*session.Page)
	if !ok {
		s.grainReply(w, res)
		return
	}
	out := historyResponse{Messages: make([]messageJSON, 0, len(page.Messages))}
	for _, m := range page.Messages {
		out.Messages = append(out.Messages, toJSON(m))
	}
	if page.NextBefore != 0 {
		cursor := strconv.FormatUint(page.NextBefore, 10)
		out.NextCursor = &cursor
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) deleteSession(w http.ResponseWriter, r *http.Request) {
	identity, ok := sessionIdentity(w, r)
	if !ok {
		return
	}
	res, err := s.cfg.Grains.Request(r.Context(), identity, session.Kind, &session.Clear{})
	if err != nil {
		s.grainError(w, r, err)
		return
	}
	if _, ok := res.(*session.Cleared); !ok {
		s.grainReply(w, res)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
