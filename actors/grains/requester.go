package grains

import "context"

// Requester sends a message to a grain and waits for its answer: it is how
// every typed client (session.Client, cache.Client, ratelimit.Limiter)
// reaches its grains. *cluster.Node is the production one; tests wrap it
// to count or fail calls.
//
// Clients call Request concurrently from every goroutine that uses them,
// so implementations must be safe for concurrent use. Request must return
// by ctx's deadline (or a default one when ctx has none), never block
// forever, and must not keep msg after it returns.
type Requester interface {
	// Request delivers msg to the grain kind/identity, activating it if
	// needed, and returns its reply, or an error when no reply came.
	Request(ctx context.Context, identity, kind string, msg any) (any, error)
}

// HostWatcher is implemented by a Requester that can tell when a member
// of the cluster fails (*cluster.Node does). A client whose answers keep
// arriving after Request returned (a session's reply stream) uses it to
// stop waiting for a host that cannot send any more. It must be safe for
// concurrent use.
type HostWatcher interface {
	// HostLost returns a channel closed when the member at the
	// actor-remote address is declared failed; nil means never.
	HostLost(address string) <-chan struct{}
}
