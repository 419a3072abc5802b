package edge

import (
	"net/http"

	"github.com/parley-chat/parley/actors/session"
)

// stopReply is POST /chat/{sessionId}/stop: 204 once the session has
// cancelled its reply in progress, also when none was. The reply's stream
// then ends with done, finishReason "stopped"; the partial reply is
// stored.
func (s *server) stopReply(w http.ResponseWriter, r *http.Request) {
	identity, ok := sessionIdentity(w, r)
	if !ok {
		return
	}
	res, err := s.cfg.Grains.Request(r.Context(), identity, session.Kind, &session.Stop{})
	if err != nil {
		s.grainError(w, r, err)
		return
	}
	if _, ok := res.(*session.Stopped); !ok {
		s.grainReply(w, res)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
