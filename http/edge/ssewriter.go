package edge

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// sseWriter writes the `data:`-only Server-Sent Events of the compatible
// routes (OpenAI's and the AI SDK's), each flushed as it is written. Every
// method returns false once the client is gone.
type sseWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	frame bytes.Buffer // reused: each event is one Write
}

// startSSE sends the 200 and the stream's headers.
func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = sw.rc.Flush()
	return sw
}

// data sends `data: <v as JSON>`.
func (sw *sseWriter) data(v any) bool {
	sw.frame.Reset()
	sw.frame.WriteString("data: ")
	if err := json.NewEncoder(&sw.frame).Encode(v); err != nil { // ends with "\n"
		return false
	}
	sw.frame.WriteString("\n")
	return sw.write(sw.frame.Bytes())
}

// raw sends s as it is (a whole event, blank line included).
func (sw *sseWriter) raw(s string) bool { return sw.write([]byte(s)) }

// ping sends the heartbeat comment every client ignores.
func (sw *sseWriter) ping() bool { return sw.raw(": ping\n\n") }

func (sw *sseWriter) write(b []byte) bool {
	if _, err := sw.w.Write(b); err != nil {
		return false
	}
	return sw.rc.Flush() == nil
}
