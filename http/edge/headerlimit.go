package edge

import (
	"net/http"
	"strconv"
)

// withHeaderLimit refuses a request whose request line and headers add up
// to more than MaxHeaderBytes with 431, as JSON with the trace id. It
// counts what the client sent (method, target, protocol, every name and
// value with its separators), the measure http.Server.MaxHeaderBytes uses.
//
// net/http itself answers a plain-text 431 before any handler runs when
// the headers overflow its own buffer, so the server's MaxHeaderBytes is
// set above this limit (ServerMaxHeaderBytes) and this middleware is what
// clients normally meet.
func (s *server) withHeaderLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > s.cfg.MaxHeaderBytes {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
				"request headers are "+strconv.Itoa(n)+" bytes, over the limit of "+strconv.Itoa(s.cfg.MaxHeaderBytes))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerBytes is the size of r's request line and header block as sent.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	if r.Host != "" && r.Header.Get("Host") == "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
	}
	return n + 2
}

// ServerMaxHeaderBytes is the http.Server.MaxHeaderBytes that lets the
// edge answer oversized headers itself: four times its own limit, so that
// anything between the two gets the contract's JSON 431. Past it net/http
// answers a plain-text 431 and closes the connection.
func ServerMaxHeaderBytes(cfg Config) int {
	return 4 * cfg.withDefaults().MaxHeaderBytes
}
