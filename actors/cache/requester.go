package cache

import (
	"context"

	"github.com/parley-chat/parley/cluster"
)

// Requester sends a message to a grain and waits for its answer; it is how
// Client reaches the Cache grains. *cluster.Node is the production one.
//
// Client calls Request concurrently from every goroutine that uses it, so
// implementations must be safe for concurrent use. Request must return by
// ctx's deadline (or a default one when ctx has none), never block forever,
// and must not keep msg after it returns.
type Requester interface {
	// Request delivers msg to the grain kind/identity, activating it if
	// needed, and returns its reply, or an error when no reply came.
	Request(ctx context.Context, identity, kind string, msg any) (any, error)
}

var _ Requester = (*cluster.Node)(nil)
