package main

import (
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves net/http/pprof and expvar on --debug-addr, a listener
// of its own: profiles show what a node is doing to whoever can reach them,
// so they are never on the API port and, unless --debug-addr-public says
// otherwise, only on loopback.
type debugServer struct {
	http *http.Server
	addr string
}

// debugMux is the debug listener's routes. pprof's handlers are mounted
// on a mux of their own rather than imported for their side effect on
// http.DefaultServeMux, so nothing else can serve them by accident.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	return mux
}

// checkDebugAddr refuses a --debug-addr that is not loopback unless
// public is set. A host name other than localhost is refused too: what it
// resolves to is not known here.
func checkDebugAddr(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if public || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address; profiles expose the process, so give --debug-addr-public to serve them there", addr)
}

// startDebug serves the debug routes on l until stop.
func startDebug(l net.Listener, logger *slog.Logger) *debugServer {
	d := &debugServer{
		addr: l.Addr().String(),
		http: &http.Server{
			Handler:           debugMux(),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
	go func() {
		if err := d.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("debug listener stopped", "addr", d.addr, "err", err)
		}
	}()
	logger.Info("debug listener serving pprof and expvar", "addr", d.addr)
	return d
}

// stop closes the listener and any profile in progress; nil-safe.
func (d *debugServer) stop() {
	if d != nil {
		_ = d.http.Close()
	}
}
