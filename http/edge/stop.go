package edge

import "net/http"

// stopReply is POST /chat/{sessionId}/stop: 204 once the session has
// cancelled its reply in progress, also when none was. The reply's stream
// then ends with done, finishReason "stopped"; the partial reply is
// stored.
func (s *server) stopReply(w http.ResponseWriter, r *http.Request) {
	tenant, sessionID, ok := s.sessionIDOf(w, r)
	if !ok {
		return
	}
	if _, err := s.cfg.Sessions.Stop(r.Context(), tenant, sessionID); err != nil {
		s.writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
