package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chat/parley/actors/grains"
)

// Client is how Parley's own code (the HTTP edge) reads and writes a
// tenant's cache. It validates every request before any grain is called
// and reports failures as this package's sentinel errors. It is safe for
// concurrent use.
type Client struct {
	node grains.Requester

	// Observer, when set, is told about every answered Get. Set it before
	// the Client is first used.
	Observer Observer
}

// NewClient returns a Client that reaches the Cache grains through node
// (a *cluster.Node in production).
func NewClient(node grains.Requester) *Client {
	return &Client{node: node}
}

// Get returns the tenant's entry under key and when it expires. A key that
// was never stored, was deleted or has expired is ok == false with a nil
// error. Errors are ErrInvalidKey or grains.ErrUnavailable. The value belongs to
// the caller.
func (c *Client) Get(ctx context.Context, tenant, key string) (value []byte, expiresAt time.Time, ok bool, err error) {
	identity, err := Identity(tenant, key)
	if err != nil {
		return nil, time.Time{}, false, err
	}
	res, err := c.request(ctx, "get", identity, &Get{})
	if err != nil {
		return nil, time.Time{}, false, err
	}
	switch res := res.(type) {
	case *Value:
		c.observe(true)
		return res.Value, time.Unix(0, res.ExpiresAtUnixNano), true, nil
	case *Miss:
		c.observe(false)
		return nil, time.Time{}, false, nil
	}
	return nil, time.Time{}, false, unexpected("get", tenant, res)
}

// Put stores value under the tenant's key for ttl (0 means DefaultTTL),
// replacing any entry, and returns when it expires. When Put returns nil
// the entry is durable and every later Get, from any node, sees it. Errors
// are ErrInvalidKey, ErrValueTooLarge, ErrInvalidTTL or grains.ErrUnavailable.
func (c *Client) Put(ctx context.Context, tenant, key string, value []byte, ttl time.Duration) (expiresAt time.Time, err error) {
	identity, err := Identity(tenant, key)
	if err != nil {
		return time.Time{}, err
	}
	if err := checkValue(value); err != nil {
		return time.Time{}, err
	}
	if _, err := effectiveTTL(ttl); err != nil {
		return time.Time{}, err
	}
	res, err := c.request(ctx, "put", identity, &Put{Value: value, TtlNanos: int64(ttl)})
	if err != nil {
		return time.Time{}, err
	}
	if res, ok := res.(*Stored); ok {
		return time.Unix(0, res.ExpiresAtUnixNano), nil
	}
	return time.Time{}, unexpected("put", tenant, res)
}

// Delete removes the tenant's entry under key; deleting a missing key is
// not an error. Errors are ErrInvalidKey or grains.ErrUnavailable.
func (c *Client) Delete(ctx context.Context, tenant, key string) error {
	identity, err := Identity(tenant, key)
	if err != nil {
		return err
	}
	res, err := c.request(ctx, "delete", identity, &Delete{})
	if err != nil {
		return err
	}
	if _, ok := res.(*Deleted); ok {
		return nil
	}
	return unexpected("delete", tenant, res)
}

// request calls the grain and turns a call that failed, or a Failure
// answer, into an error; any other answer is returned for the caller to
// read.
func (c *Client) request(ctx context.Context, op, identity string, msg any) (any, error) {
	res, err := c.node.Request(ctx, identity, Kind, msg)
	if err != nil {
		return nil, grains.CallFailed("cache "+op, err)
	}
	if f, ok := res.(*grains.Failure); ok {
		return nil, failureError(op, f)
	}
	return res, nil
}

// failureError maps a grain's Failure to a sentinel. Client checks what
// the grain checks, so an invalid_argument means a node running other
// rules (a rolling upgrade); its message starts with the sentinel's text,
// since the grain answers with the error the same checks return.
func failureError(op string, f *grains.Failure) error {
	err := grains.Failed(f)
	if errors.Is(err, grains.ErrInvalidArgument) {
		for _, sentinel := range []error{ErrInvalidKey, ErrValueTooLarge, ErrInvalidTTL} {
			if strings.HasPrefix(f.Message, sentinel.Error()) {
				return fmt.Errorf("cache %s refused by the grain: %w%s", op, sentinel, strings.TrimPrefix(f.Message, sentinel.Error()))
			}
		}
	}
	return fmt.Errorf("cache %s: %w", op, err)
}

// unexpected reports an answer no Cache grain sends: a bug, not a state of
// the cluster, so it matches no sentinel.
func unexpected(op, tenant string, res any) error {
	return fmt.Errorf("cache %s for tenant %s: unexpected answer %T", op, tenant, res)
}

func (c *Client) observe(hit bool) {
	if c.Observer != nil {
		c.Observer.CacheGet(hit)
	}
}
