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

func toJSON(m session.Entry) messageJSON {
	return messageJSON{
		ID:           m.ID,
		Seq:          m.Seq,
		Role:         m.Role,
		Content:      m.Content,
		CreatedAt:    m.CreatedAt.UTC().Format(time.RFC3339Nano),
		TokenCount:   m.TokenCount,
		FinishReason: m.FinishReason,
	}
}

// sessionIDOf reads {sessionId} and checks that it names a session of the
// authenticated tenant: the tenant comes only from the key.
func (s *server) sessionIDOf(w http.ResponseWriter, r *http.Request) (tenant, sessionID string, ok bool) {
	tenant, sessionID = tenantOf(r.Context()).ID, strings.ToLower(chi.URLParam(r, "sessionId"))
	if _, err := session.Identity(tenant, sessionID); err != nil {
		s.writeErr(w, r, err)
		return "", "", false
	}
	return tenant, sessionID, true
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	tenant, sessionID, ok := s.sessionIDOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, before := session.DefaultHistoryLimit, uint64(0)
	var details []ErrorDetail
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > session.MaxHistoryLimit {
			details = append(details, ErrorDetail{Field: "limit", Message: "must be a whole number from 1 to 100"})
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			details = append(details, ErrorDetail{Field: "before", Message: "must be a nextCursor from an earlier page"})
		}
		before = n
	}
	if details != nil {
		writeError(w, http.StatusBadRequest, CodeValidation, "request has invalid query parameters", details...)
		return
	}
	page, err := s.cfg.Sessions.History(r.Context(), tenant, sessionID, limit, before)
	if err != nil {
		s.writeErr(w, r, err)
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
	tenant, sessionID, ok := s.sessionIDOf(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Sessions.Clear(r.Context(), tenant, sessionID); err != nil {
		s.writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
