package model

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Chain is a tenant's model with its fallbacks. A reply goes to the first
// entry; an entry that fails before its first token is retried while the
// failure is a 429 or a 5xx (at most Retries times, waiting Backoff·2^n or
// the upstream's Retry-After, never more than MaxBackoff), and otherwise
// (or then) replaced by the next entry. Once a token was emitted the reply
// belongs to that entry: a failure ends it with FinishError, since the
// client already saw its start. Safe for concurrent use.
type Chain struct {
	cfg   ChainConfig
	links []link
}

// link is one entry of the chain.
type link struct {
	name    string
	timeout time.Duration
	model   Model
}

var _ Model = (*Chain)(nil)

// Stream implements Model. Its error wraps ErrUpstreamFailed (and the last
// *UpstreamError) when every entry failed, or the one that answered
// failed; it is ctx's error when ctx ended first.
func (c *Chain) Stream(ctx context.Context, req Request, emit func(string) error) (Usage, error) {
	var last error
	for _, l := range c.links {
		for attempt := 0; ; attempt++ {
			usage, emitted, err := c.call(ctx, l, req, emit)
			if err == nil {
				return usage, nil
			}
			if ctx.Err() != nil {
				return usage, ctx.Err()
			}
			var up *UpstreamError
			if !errors.As(err, &up) {
				// emit failed, or the model is not an upstream: not
				// something another entry can fix.
				return usage, err
			}
			c.cfg.Observer.UpstreamError(l.name, up.Code)
			if emitted {
				usage.FinishReason = FinishError
				return usage, fmt.Errorf("%w: %w", ErrUpstreamFailed, err)
			}
			last = err
			wait, retry := c.backoff(up, attempt)
			if !retry {
				break
			}
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return Usage{Model: l.name}, err
			}
		}
	}
	return Usage{}, fmt.Errorf("%w: every model failed; the last: %w", ErrUpstreamFailed, last)
}

// call makes one attempt at l, bounded by its timeout, and reports whether
// it emitted anything.
func (c *Chain) call(ctx context.Context, l link, req Request, emit func(string) error) (Usage, bool, error) {
	actx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	start := time.Now()
	emitted := false
	usage, err := l.model.Stream(actx, req, func(token string) error {
		if !emitted {
			emitted = true
			c.cfg.Observer.UpstreamFirstToken(l.name, time.Since(start))
		}
		return emit(token)
	})
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		// Our own deadline, whatever the model made of it.
		var up *UpstreamError
		if !errors.As(err, &up) || up.Code != CodeTimeout {
			err = &UpstreamError{Model: l.name, Code: CodeTimeout, Err: err}
		}
	}
	usage.Model = l.name
	return usage, emitted, err
}

// backoff is how long to wait before calling the same entry again, and
// whether to: a retryable failure within Retries whose wait fits in
// MaxBackoff.
func (c *Chain) backoff(up *UpstreamError, attempt int) (time.Duration, bool) {
	if !up.retryable() || attempt >= c.cfg.Retries {
		return 0, false
	}
	wait := up.RetryAfter
	if wait == 0 {
		wait = c.cfg.Backoff << attempt
	}
	if wait > c.cfg.MaxBackoff {
		return 0, false
	}
	return wait, true
}
