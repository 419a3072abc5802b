package session

import (
	"context"
	"errors"
	"sync"
)

// Replies is the set of model replies running on one node's session
// grains, shared by every activation through Config.Replies. It is how a
// node drains (docs/operations.md): after Drain no grain starts a reply,
// Running says when the running ones have ended, and Cut ends those still
// running so that each is stored as far as it got. Safe for concurrent
// use.
type Replies struct {
	mu       sync.Mutex
	running  map[*runningReply]struct{}
	draining bool
	idle     chan struct{} // closed, and replaced, whenever running empties
}

type runningReply struct{ cancel context.CancelCauseFunc }

// NewReplies returns an empty set, not draining.
func NewReplies() *Replies {
	return &Replies{running: map[*runningReply]struct{}{}, idle: make(chan struct{})}
}

// start registers a reply about to run under ctx, returning the context
// it must run with and the function to call when it has ended; ok is
// false once the node drains, and then nothing is registered.
func (r *Replies) start(ctx context.Context) (_ context.Context, end func(), ok bool) {
	ctx, cancel := context.WithCancelCause(ctx)
	run := &runningReply{cancel: cancel}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		cancel(nil)
		return nil, nil, false
	}
	r.running[run] = struct{}{}
	return ctx, func() {
		cancel(nil)
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.running, run)
		if len(r.running) == 0 {
			close(r.idle)
			r.idle = make(chan struct{})
		}
	}, true
}

// Drain makes every grain of the node refuse new replies (ErrDraining).
func (r *Replies) Drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.draining = true
}

// Running is how many replies are running.
func (r *Replies) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// Wait returns when no reply runs, or with ctx's error.
func (r *Replies) Wait(ctx context.Context) error {
	for {
		r.mu.Lock()
		n, idle := len(r.running), r.idle
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errReplyCut is the cause of a reply Cut ended.
var errReplyCut = errors.New("the node shut down before the reply was finished")

// Cut ends every running reply: each stops where it is and is stored as
// far as it got (finish reason "error"), and its stream ends with a
// retryable error (unavailable), not upstream_failed: the model did not
// fail, the node stopped.
func (r *Replies) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for run := range r.running {
		run.cancel(errReplyCut)
	}
}
