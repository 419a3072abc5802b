package cache_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/cluster"
)

// fakeRequester records the grain calls a Client makes and answers each
// with reply and err.
type fakeRequester struct {
	mu    sync.Mutex
	calls []fakeCall
	reply any
	err   error
}

type fakeCall struct {
	identity, kind string
	msg            any
}

var _ grains.Requester = (*fakeRequester)(nil)

func (f *fakeRequester) Request(_ context.Context, identity, kind string, msg any) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{identity, kind, msg})
	return f.reply, f.err
}

func (f *fakeRequester) made() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// hits records what an Observer is told.
type hits struct {
	mu   sync.Mutex
	seen []bool
}

func (h *hits) CacheGet(hit bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, hit)
}

func TestClientRefusesBadRequestsBeforeAnyGrainCall(t *testing.T) {
	node := &fakeRequester{reply: &cache.Stored{}}
	c := cache.NewClient(node)
	ctx := context.Background()
	long := strings.Repeat("k", cache.MaxKeyBytes+1)
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"get NUL key", func() error { _, _, _, err := c.Get(ctx, "acme", "a\x00b"); return err }, cache.ErrInvalidKey},
		{"get 513-byte key", func() error { _, _, _, err := c.Get(ctx, "acme", long); return err }, cache.ErrInvalidKey},
		{"get empty key", func() error { _, _, _, err := c.Get(ctx, "acme", ""); return err }, cache.ErrInvalidKey},
		{"get bad tenant", func() error { _, _, _, err := c.Get(ctx, "acme:globex", "x"); return err }, cache.ErrInvalidKey},
		{"put NUL key", func() error { _, err := c.Put(ctx, "acme", "\x00", []byte("v"), 0); return err }, cache.ErrInvalidKey},
		{"put invalid UTF-8 key", func() error { _, err := c.Put(ctx, "acme", "\xff", []byte("v"), 0); return err }, cache.ErrInvalidKey},
		{"put bad tenant", func() error { _, err := c.Put(ctx, "", "x", []byte("v"), 0); return err }, cache.ErrInvalidKey},
		{"put 64 KiB + 1", func() error {
			_, err := c.Put(ctx, "acme", "x", make([]byte, cache.MaxValueBytes+1), 0)
			return err
		}, cache.ErrValueTooLarge},
		{"put TTL -1 s", func() error { _, err := c.Put(ctx, "acme", "x", nil, -time.Second); return err }, cache.ErrInvalidTTL},
		{"put TTL 500 ms", func() error { _, err := c.Put(ctx, "acme", "x", nil, 500*time.Millisecond); return err }, cache.ErrInvalidTTL},
		{"put TTL 31 days", func() error { _, err := c.Put(ctx, "acme", "x", nil, 31*24*time.Hour); return err }, cache.ErrInvalidTTL},
		{"delete 513-byte key", func() error { return c.Delete(ctx, "acme", long) }, cache.ErrInvalidKey},
		{"delete bad tenant", func() error { return c.Delete(ctx, "ACME", "x") }, cache.ErrInvalidKey},
	} {
		if err := tc.call(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if calls := node.made(); len(calls) != 0 {
		t.Fatalf("refused requests made %d grain calls, first %+v", len(calls), calls[0])
	}
}

func TestClientSendsTheRequestToTheKeysGrain(t *testing.T) {
	node := &fakeRequester{reply: &cache.Stored{ExpiresAtUnixNano: 42}}
	c := cache.NewClient(node)
	exp, err := c.Put(context.Background(), "acme", "other:cache:x", []byte("v"), 0)
	if err != nil || exp.UnixNano() != 42 {
		t.Fatalf("put: %s %v", exp, err)
	}
	calls := node.made()
	if len(calls) != 1 || calls[0].identity != "acme:cache:other:cache:x" || calls[0].kind != cache.Kind {
		t.Fatalf("calls %+v", calls)
	}
	// TTL 0 goes to the grain as 0: the grain alone turns it into the
	// default, on its own clock.
	if put, ok := calls[0].msg.(*cache.Put); !ok || string(put.Value) != "v" || put.TtlNanos != 0 {
		t.Fatalf("sent %+v", calls[0].msg)
	}
}

func TestClientMapsFailuresToSentinels(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply any
		err   error
		want  []error
		avoid error
	}{
		{"node timeout", nil, cluster.ErrTimeout, []error{grains.ErrUnavailable, cluster.ErrTimeout}, nil},
		{"no owner", nil, cluster.ErrUnavailable, []error{grains.ErrUnavailable, cluster.ErrUnavailable}, nil},
		{"node leaving", nil, cluster.ErrShuttingDown, []error{grains.ErrUnavailable}, nil},
		{"caller cancelled", nil, context.Canceled, []error{context.Canceled}, grains.ErrUnavailable},
		{"storage failed", &grains.Failure{Code: grains.CodeUnavailable, Message: "cache put: storage unavailable"}, nil, []error{grains.ErrUnavailable}, nil},
		{"grain refuses the value", &grains.Failure{Code: grains.CodeInvalidArgument, Message: cache.ErrValueTooLarge.Error() + ": 9 bytes"}, nil, []error{cache.ErrValueTooLarge}, nil},
		{"grain refuses the TTL", &grains.Failure{Code: grains.CodeInvalidArgument, Message: cache.ErrInvalidTTL.Error() + ": 1ns"}, nil, []error{cache.ErrInvalidTTL}, nil},
		{"grain refuses the identity", &grains.Failure{Code: grains.CodeInvalidArgument, Message: cache.ErrInvalidKey.Error() + ": tenant"}, nil, []error{cache.ErrInvalidKey}, nil},
		{"answer of the wrong type", &cache.Deleted{}, nil, nil, grains.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cache.NewClient(&fakeRequester{reply: tc.reply, err: tc.err})
			_, err := c.Put(context.Background(), "acme", "k", []byte("v"), time.Minute)
			if err == nil {
				t.Fatal("put succeeded")
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("%v is not %v", err, want)
				}
			}
			if tc.avoid != nil && errors.Is(err, tc.avoid) {
				t.Errorf("%v is %v", err, tc.avoid)
			}
		})
	}
}

func TestClientGetReportsHitsAndMissesToTheObserver(t *testing.T) {
	node := &fakeRequester{}
	observer := &hits{}
	c := cache.NewClient(node)
	c.Observer = observer
	ctx := context.Background()

	node.reply = &cache.Value{Value: []byte("v"), ExpiresAtUnixNano: 7}
	value, exp, ok, err := c.Get(ctx, "acme", "k")
	if err != nil || !ok || !bytes.Equal(value, []byte("v")) || exp.UnixNano() != 7 {
		t.Fatalf("hit: %q %s %v %v", value, exp, ok, err)
	}
	node.reply = &cache.Miss{}
	if value, _, ok, err := c.Get(ctx, "acme", "k"); err != nil || ok || value != nil {
		t.Fatalf("miss: %q %v %v", value, ok, err)
	}
	node.reply, node.err = nil, cluster.ErrTimeout
	if _, _, _, err := c.Get(ctx, "acme", "k"); !errors.Is(err, grains.ErrUnavailable) {
		t.Fatalf("timeout: %v", err)
	}
	if _, _, _, err := c.Get(ctx, "acme", "\x00"); !errors.Is(err, cache.ErrInvalidKey) {
		t.Fatalf("bad key: %v", err)
	}
	if got := observer.seen; len(got) != 2 || !got[0] || got[1] {
		t.Fatalf("observer saw %v, want [true false]: failures are not reported", got)
	}
}
