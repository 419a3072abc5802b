package edge

import (
	_ "embed"
	"net/http"
)

// playgroundPage is the page GET / serves (docs/http.md, "Playground"):
// one file, no build step, no requests to anything but this server.
//
//go:embed playground/index.html
var playgroundPage []byte

// playgroundCSP keeps the page to its own inline script and style and to
// requests to this origin.
const playgroundCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *server) playground(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", playgroundCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(playgroundPage)
}
