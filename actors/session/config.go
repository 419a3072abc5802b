package session

import (
	"errors"
	"log/slog"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/persistence"
)

// Retention bounds what one tenant's sessions keep.
type Retention struct {
	// MaxMessages caps a session: appending past it deletes the oldest
	// messages. Default 1000.
	MaxMessages int
	// MaxAge hides messages older than this at once and lets the sweep
	// delete them. Default 30 days.
	MaxAge time.Duration
	// Quota is the tenant's storage quota, which every append carries to
	// the store (read again at every append, unlike the fields above,
	// which an activation reads once). None by default.
	Quota persistence.Quota
}

// DefaultRetention is the seed's: 1000 messages, 30 days.
var DefaultRetention = Retention{MaxMessages: 1000, MaxAge: 30 * 24 * time.Hour}

// Config is what every ChatSession activation on a node shares.
type Config struct {
	// Store keeps the history. Required.
	Store persistence.SessionStore
	// Clock tells the time; clock.Real when nil.
	Clock clock.Clock
	// Retention returns a tenant's retention; DefaultRetention for every
	// tenant when nil.
	Retention func(tenant string) Retention
	// IdleTimeout passivates a session that received nothing for this
	// long. Default 5 minutes.
	IdleTimeout time.Duration
	// TailSize is how many recent messages a model reply is given as
	// context, and how far back an idempotency key is recognised; an
	// activation always keeps them in memory. Default 20.
	TailSize int
	// HistoryTail is how many of the newest messages an activation keeps
	// in memory, once a history request has read them, so that the
	// newest pages of history are served without the store, while their
	// text stays within HistoryTailBytes (the TailSize newest are kept
	// whatever their size). Default MaxHistoryLimit+1, so the newest page
	// of any size and whether an older one exists.
	HistoryTail int
	// HistoryTailBytes bounds the text HistoryTail keeps. Default 256 KiB.
	HistoryTailBytes int
	// StoreTimeout bounds one storage call. Default 5 s.
	StoreTimeout time.Duration
	// FollowBytes bounds the text of a reply in progress a session keeps
	// for clients that join it late (Follow): past it, the reply can no
	// longer be followed from its start. Default 1 MiB.
	FollowBytes int
	// Model writes replies to Chat; model.Mock{} when nil.
	Model model.Model
	// Models returns a tenant's model (tenants.Registry.Models); when nil,
	// Model answers for every tenant.
	Models func(tenant string) model.Model
	// Prompt returns a tenant's prompt template; none when nil.
	Prompt func(tenant string) string
	// OnUsage, when set, is told every reply's usage when it ends (stored,
	// failed mid-reply or stopped; not a replay), from the grain's
	// goroutine: it must not block. Token limits are charged through it.
	OnUsage func(tenant string, u model.Usage)
	// ReplyTimeout bounds one model reply, fallbacks and retries
	// included. Default 10 minutes: each upstream call has its own,
	// shorter, timeout (timeoutSeconds).
	ReplyTimeout time.Duration
	// Replies is the node's set of running replies, which a draining node
	// waits for (Replies.Drain); a set of its own when nil.
	Replies *Replies
	// OnActivate is called once per activation (for metrics); may be nil.
	OnActivate func()
	// Logger receives the grain's logs; discarded when nil.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults; Store must still be set. A zero
// field of a Config takes its value from here.
func DefaultConfig() Config {
	return Config{
		Clock:            clock.Real,
		Retention:        func(string) Retention { return DefaultRetention },
		IdleTimeout:      5 * time.Minute,
		TailSize:         20,
		HistoryTail:      MaxHistoryLimit + 1,
		HistoryTailBytes: 256 << 10,
		StoreTimeout:     5 * time.Second,
		FollowBytes:      1 << 20,
		Model:            model.Mock{},
		Prompt:           func(string) string { return "" },
		ReplyTimeout:     10 * time.Minute,
		Replies:          NewReplies(),
		Logger:           slog.New(slog.DiscardHandler),
	}
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("session config: Store is nil")
	case c.IdleTimeout < 0:
		return errors.New("session config: IdleTimeout is negative")
	case c.TailSize < 0:
		return errors.New("session config: TailSize is negative")
	case c.HistoryTail < 0 || c.HistoryTailBytes < 0:
		return errors.New("session config: HistoryTail or HistoryTailBytes is negative")
	case c.FollowBytes < 0:
		return errors.New("session config: FollowBytes is negative")
	}
	return nil
}
