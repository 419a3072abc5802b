package edge

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-chat/parley/actors/session"
)

// HeaderLastEventID is the header an SSE client sends when it reconnects:
// the id of the last event it received (docs/streaming.md, "Resume").
const HeaderLastEventID = "Last-Event-ID"

// chatResume is GET /chat/{sessionId}/stream: the session's reply in
// progress in POST /chat's own events, from the token after the one the
// client names (Last-Event-ID, else ?after=; neither: from the first),
// with the ids the tokens had in the stream that started the reply, then
// done or error; 204 when no reply is in progress. The header wins over
// the query: an EventSource reconnecting keeps the URL it was opened with
// and sends the header with the last id it saw, which is the newer.
func (s *server) chatResume(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	tenant, sessionID, ok := s.sessionIDOf(w, r)
	if !ok {
		return
	}
	after, rerr := resumePoint(r)
	if rerr != nil {
		rerr.write(w)
		return
	}
	reply, ok := s.follow(w, r, tenant, sessionID)
	if !ok {
		return
	}
	defer reply.Close()
	// A client can only have seen tokens the reply had written when it
	// was joined: an id at or past their count names no token of this
	// reply (an earlier reply's, or a made-up one).
	if after >= reply.Written {
		writeError(w, http.StatusRequestedRangeNotSatisfiable, CodePastReply,
			fmt.Sprintf("the reply in progress has written %d tokens so far (ids from 0); it has no token %d to resume after", reply.Written, after))
		return
	}
	s.streamReply(w, r, reply, start, tenant, streamFrom{after: after, resumed: true})
}

// resumePoint reads the index of the last token the client has: the
// Last-Event-ID header, else the after query parameter; -1 when neither
// is given. Either must be one non-negative integer, else a 400.
func resumePoint(r *http.Request) (int, *requestError) {
	field, values := HeaderLastEventID, r.Header.Values(HeaderLastEventID)
	if len(values) == 0 {
		field, values = "after", r.URL.Query()["after"]
	}
	if len(values) == 0 {
		return -1, nil
	}
	if len(values) == 1 {
		if n, err := strconv.ParseUint(values[0], 10, 31); err == nil {
			return int(n), nil
		}
	}
	return 0, &requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request names an invalid resume point",
		details: []ErrorDetail{{Field: field, Message: "must be given once, as the id (a whole number from 0) of the last token event received"}}}
}

// follow returns the session's reply in progress for a resume route; when
// there is none (204) or the session cannot be reached, it has answered
// and ok is false.
func (s *server) follow(w http.ResponseWriter, r *http.Request, tenant, sessionID string) (_ *session.Reply, ok bool) {
	reply, err := s.cfg.Sessions.Follow(r.Context(), tenant, sessionID, s.cfg.StreamBuffer, s.cfg.SlowReaderGrace)
	if errors.Is(err, session.ErrNoReply) {
		w.WriteHeader(http.StatusNoContent)
		return nil, false
	}
	if err != nil {
		s.writeErr(w, r, err)
		return nil, false
	}
	return reply, true
}
