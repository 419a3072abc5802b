package raftstore

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// One TCP port per member carries two kinds of connection, told apart by
// their first byte, as Consul does on its server port: raft's own traffic,
// and requests forwarded to the leader (forward.go). A member's raft address
// is thus also where it takes forwarded requests, and a follower needs
// nothing but raft's idea of the leader to reach it.
const (
	connRaft    byte = 'R'
	connForward byte = 'F'
)

// handshakeTimeout bounds the wait for an accepted connection's first byte.
const handshakeTimeout = 5 * time.Second

// mux owns the member's listener and every connection made through it,
// accepted or dialled, so that closing it cuts them all at once, as the
// death of the process would. It is raft's StreamLayer: Accept yields the
// raft connections, Dial opens raft connections to other members.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	log       *slog.Logger
	// serveForward handles one forwarded-request connection until it ends.
	serveForward func(net.Conn)
	// tls, when set, wraps every connection in mutual TLS before its
	// first byte (tls.go).
	tls *transportTLS

	raftConns chan net.Conn
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

var _ raft.StreamLayer = (*mux)(nil)

func newMux(ln net.Listener, advertise net.Addr, logger *slog.Logger) *mux {
	return &mux{
		ln:        ln,
		advertise: advertise,
		log:       logger,
		raftConns: make(chan net.Conn),
		done:      make(chan struct{}),
		conns:     make(map[*trackedConn]struct{}),
	}
}

// start begins accepting connections; forwarded ones go to serveForward.
func (m *mux) start(serveForward func(net.Conn)) {
	m.serveForward = serveForward
	m.wg.Add(1)
	go m.acceptLoop()
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Warn("raft listener accept failed", "err", err)
			select {
			case <-m.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		tc, ok := m.track(c)
		if !ok {
			return
		}
		m.wg.Add(1)
		go m.route(tc)
	}
}

// route reads the connection's first byte and hands it to raft or to the
// forwarding server.
func (m *mux) route(c *trackedConn) {
	defer m.wg.Done()
	var kind [1]byte
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	conn, err := m.tls.server(c)
	if err != nil {
		_ = c.Close()
		return
	}
	if _, err := conn.Read(kind[:]); err != nil {
		_ = conn.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		select {
		case m.raftConns <- conn:
		case <-m.done:
			_ = conn.Close()
		}
	case connForward:
		m.serveForward(conn)
		_ = conn.Close()
	default:
		m.log.Warn("connection of unknown kind refused", "remote", c.RemoteAddr().String(), "kind", kind[0])
		_ = conn.Close()
	}
}

// Accept implements net.Listener for raft: it returns the next raft
// connection.
func (m *mux) Accept() (net.Conn, error) {
	select {
	case c := <-m.raftConns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: it stops accepting and closes every
// connection of this member. It is safe to call more than once.
func (m *mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	conns := m.conns
	m.conns = nil
	m.mu.Unlock()

	close(m.done)
	err := m.ln.Close()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return err
}

// wait returns once the accept loop and every routing goroutine are done.
func (m *mux) wait() { m.wg.Wait() }

// Addr implements net.Listener: the address other members dial.
func (m *mux) Addr() net.Addr {
	if m.advertise != nil {
		return m.advertise
	}
	return m.ln.Addr()
}

// Dial implements raft.StreamLayer.
func (m *mux) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return m.dial(string(address), connRaft, timeout)
}

// dial opens a connection of the given kind to another member.
func (m *mux) dial(address string, kind byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	tc, ok := m.track(c)
	if !ok {
		return nil, net.ErrClosed
	}
	_ = tc.SetDeadline(time.Now().Add(timeout))
	conn, err := m.tls.client(tc)
	if err != nil {
		_ = tc.Close()
		return nil, err
	}
	if _, err := conn.Write([]byte{kind}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return conn, nil
}

// track registers c so that Close closes it; it refuses (and closes) c once
// the mux is closed.
func (m *mux) track(c net.Conn) (*trackedConn, bool) {
	tc := &trackedConn{Conn: c, m: m}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		_ = c.Close()
		return nil, false
	}
	m.conns[tc] = struct{}{}
	return tc, true
}

// trackedConn leaves the mux's set when closed.
type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.m.mu.Lock()
		delete(c.m.conns, c)
		c.m.mu.Unlock()
	})
	return err
}
