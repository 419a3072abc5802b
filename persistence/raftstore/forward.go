package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"sync"
	"time"
)

// # Forwarding
//
// Only the leader can append to the raft log or answer a linearizable
// read, so a member that is not the leader sends the request on: it dials
// the leader's raft address with the connForward tag (mux.go) and calls one
// of forwardService's methods over net/rpc. Arguments and replies are the
// byte encodings of command.go, wrapped in a small envelope that carries
// the time the caller will still wait, so the leader answers (with
// ErrNoQuorum if it must) before the caller gives up.
//
// The leader never forwards again: a member that is no longer leader answers
// errNotLeader, meaning "not carried out", and the sender looks for the new
// leader. Whether a write can be sent again decides everything else:
//
//   - a request that never left (the dial failed, or the connection was
//     already known to be dead: rpc.ErrShutdown) or that was answered with
//     errNotLeader is sent again, to whoever is leader by then;
//   - a write whose connection broke after it left, or that got no answer
//     in time, may have been committed: it fails with ErrUnavailable (or
//     ErrNoQuorum on the deadline) and is not sent again, because a second
//     copy could land too;
//   - reads and membership changes are idempotent and are retried on any
//     failure until the deadline.

// forwardServiceName is the net/rpc service name of forwardService.
const forwardServiceName = "Raftstore"

// forwardService is what a member serves to forwarded requests. Its methods
// follow net/rpc's shape; each reply is an encoded result, never an RPC
// error, so that the error's meaning survives the trip (command.go).
type forwardService struct{ s *Store }

// Apply carries out an encoded command if this member is the leader.
func (f *forwardService) Apply(req []byte, reply *[]byte) error {
	timeout, body, err := decodeEnvelope(req)
	if err != nil {
		return err
	}
	*reply = encodeResult(f.s.serveApply(body, timeout))
	return nil
}

// Read answers an encoded query if this member is the leader.
func (f *forwardService) Read(req []byte, reply *[]byte) error {
	timeout, body, err := decodeEnvelope(req)
	if err != nil {
		return err
	}
	*reply = encodeResult(f.s.serveRead(body, timeout))
	return nil
}

// ChangeMembership adds a voter or removes a server if this member is the
// leader.
func (f *forwardService) ChangeMembership(req []byte, reply *[]byte) error {
	timeout, body, err := decodeEnvelope(req)
	if err != nil {
		return err
	}
	*reply = encodeResult(f.s.serveMembership(body, timeout))
	return nil
}

func encodeEnvelope(timeout time.Duration, body []byte) []byte {
	var e encoder
	e.Byte(wireFormatV1)
	e.Duration(timeout)
	e.Bytes(body)
	return e.Encoded()
}

func decodeEnvelope(b []byte) (time.Duration, []byte, error) {
	d := newDecoder(b)
	if f := d.Byte(); d.Err() == nil && f != wireFormatV1 {
		return 0, nil, fmt.Errorf("forwarded request format %d unknown", f)
	}
	timeout := d.Duration()
	body := d.Bytes()
	if err := d.Finish(); err != nil {
		return 0, nil, fmt.Errorf("forwarded request: %w", err)
	}
	return timeout, body, nil
}

// errDeadline: the caller's deadline passed while waiting for an answer.
var errDeadline = errors.New("deadline passed")

// forwarder keeps one net/rpc client per leader address.
type forwarder struct {
	mux *mux

	mu      sync.Mutex
	clients map[string]*forwardClient
}

type forwardClient struct {
	rpc  *rpc.Client
	conn net.Conn
}

func newForwarder(m *mux) *forwarder {
	return &forwarder{mux: m, clients: make(map[string]*forwardClient)}
}

// call sends one request to addr and waits for its reply until deadline.
// sent reports whether the request may have reached addr.
func (f *forwarder) call(ctx context.Context, addr, method string, body []byte, deadline time.Time) (r result, sent bool, err error) {
	remaining := time.Until(deadline)
	if remaining <= 0 {
		return result{}, false, errDeadline
	}
	c, err := f.client(addr, min(remaining, time.Second))
	if err != nil {
		return result{}, false, err
	}
	// Leave the leader a tenth of the time (at most 100ms) to send its
	// answer back before this side gives up.
	serverTimeout := remaining - min(remaining/10, 100*time.Millisecond)
	var reply []byte
	call := c.rpc.Go(forwardServiceName+"."+method, encodeEnvelope(serverTimeout, body), &reply, make(chan *rpc.Call, 1))

	timer := time.NewTimer(remaining)
	defer timer.Stop()
	select {
	case <-call.Done:
	case <-ctx.Done():
		return result{}, true, ctx.Err()
	case <-timer.C:
		f.drop(addr, c) // the connection may be stuck; start afresh next time
		return result{}, true, errDeadline
	}
	if call.Error != nil {
		f.drop(addr, c)
		// A client already shut down refuses the call before sending it.
		// It shut down on its own (the connection failed earlier), since
		// drop closes only the connection, never the client.
		return result{}, !errors.Is(call.Error, rpc.ErrShutdown), fmt.Errorf("%s on %s: %w", method, addr, call.Error)
	}
	r, err = decodeResult(reply)
	if err != nil {
		return result{}, true, fmt.Errorf("%s on %s: %w", method, addr, err)
	}
	return r, true, nil
}

func (f *forwarder) client(addr string, dialTimeout time.Duration) (*forwardClient, error) {
	f.mu.Lock()
	c, ok := f.clients[addr]
	f.mu.Unlock()
	if ok {
		return c, nil
	}
	conn, err := f.mux.dial(addr, connForward, dialTimeout)
	if err != nil {
		return nil, fmt.Errorf("dial leader %s: %w", addr, err)
	}
	c = &forwardClient{rpc: rpc.NewClient(conn), conn: conn}
	f.mu.Lock()
	defer f.mu.Unlock()
	if existing, ok := f.clients[addr]; ok {
		_ = conn.Close() // another caller dialled first
		return existing, nil
	}
	f.clients[addr] = c
	return c, nil
}

// drop forgets c and closes its connection. It closes the connection, not
// the client: calls still pending on it then fail with the connection's
// error, never with rpc.ErrShutdown, which call takes for "not sent".
func (f *forwarder) drop(addr string, c *forwardClient) {
	f.mu.Lock()
	if f.clients[addr] == c {
		delete(f.clients, addr)
	}
	f.mu.Unlock()
	_ = c.conn.Close()
}

// close drops every client.
func (f *forwarder) close() {
	f.mu.Lock()
	clients := f.clients
	f.clients = make(map[string]*forwardClient)
	f.mu.Unlock()
	for _, c := range clients {
		_ = c.conn.Close()
	}
}
