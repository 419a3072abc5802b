package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/parley-chat/parley/cluster/security"
)

// # Transport security
//
// With Config.ServerTLS and Config.ClientTLS set, every connection of the
// member's port is mutual TLS before anything else: the TLS handshake
// comes first, then the R/F byte of mux.go inside it. A peer without a
// certificate of the cluster CA never reaches raft or the forwarding
// service: its handshake fails and the connection is closed, before any
// byte of either protocol is read or written.

// transportTLS is the TLS side of the mux; a nil *transportTLS leaves
// connections in the clear (a loopback-only member, `make run`).
type transportTLS struct {
	serverConf *tls.Config
	clientConf *tls.Config
	onRefused  func(remote string, err error)
}

func newTransportTLS(cfg Config) *transportTLS {
	if cfg.ServerTLS == nil {
		return nil
	}
	onRefused := cfg.OnTLSRefused
	if onRefused == nil {
		onRefused = func(string, error) {}
	}
	return &transportTLS{serverConf: cfg.ServerTLS, clientConf: cfg.ClientTLS, onRefused: onRefused}
}

// server completes the server side of an accepted connection's handshake
// within the deadline already set on c.
func (t *transportTLS) server(c net.Conn) (net.Conn, error) {
	if t == nil {
		return c, nil
	}
	tc := tls.Server(c, t.serverConf)
	if err := tc.Handshake(); err != nil {
		t.onRefused(c.RemoteAddr().String(), err)
		return nil, err
	}
	return tc, nil
}

// client completes the client side of a dialled connection's handshake
// within the deadline already set on c.
func (t *transportTLS) client(c net.Conn) (net.Conn, error) {
	if t == nil {
		return c, nil
	}
	tc := tls.Client(c, t.clientConf)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("tls handshake with %s: %w", c.RemoteAddr(), err)
	}
	return tc, nil
}

// errNoTLS: the member's port is not TLS, so no peer identity can be seen.
var errNoTLS = errors.New("raftstore: the raft port runs without TLS")

// VerifyPeer dials addr, the raft address a member advertises, completes a
// TLS handshake with it and checks that its certificate (signed by the
// cluster CA: the handshake verified that) names the member name. This is
// what the raft leader asks before making a member a voter: gossip says
// which address a name claims, the certificate proves it. Without TLS it
// returns errNoTLS wrapped; it never sends a request to the peer.
func (s *Store) VerifyPeer(ctx context.Context, name, addr string) error {
	if s.mux.tls == nil {
		return fmt.Errorf("verify %s at %s: %w", name, addr, errNoTLS)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("verify %s at %s: %w", name, addr, err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	c := tls.Client(raw, s.mux.tls.clientConf)
	if err := c.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("verify %s at %s: %w", name, addr, err)
	}
	if err := security.PeerNamed(c.ConnectionState(), name); err != nil {
		return fmt.Errorf("verify %s at %s: %w", name, addr, err)
	}
	return nil
}

// TLS reports whether the member's port runs mutual TLS.
func (s *Store) TLS() bool { return s.mux.tls != nil }
