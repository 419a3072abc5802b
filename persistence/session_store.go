package persistence

import (
	"context"
	"time"
)

// SessionKey names one chat session. Both parts are validated by the caller
// (ValidTenantID, ValidSessionID) before any store method sees them; stores
// check again and refuse bad keys with ErrInvalidKey.
type SessionKey struct {
	Tenant  string
	Session string
}

// Role is the author of a message.
type Role string

// The roles a message can have.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleSystem    Role = "system"
)

// Message is one stored chat message. Seq numbers a session's messages 1, 2,
// 3… with no gaps, in the order they were appended.
type Message struct {
	Seq        uint64
	ID         string
	Role       Role
	Content    string
	TokenCount int
	CreatedAt  time.Time
	// IdempotencyKey is the client-chosen key of the request that stored
	// the message; empty when none. Stores keep it as bytes and never
	// look at it: the session grain decides what a key means.
	IdempotencyKey string
	// FinishReason is why an assistant reply ended ("stop", "length",
	// "stopped", "error"); empty for other messages and for replies
	// stored by earlier versions. Stores keep it and never look at it.
	FinishReason string
}

// SessionMeta is what a session grain loads on activation instead of its
// history.
type SessionMeta struct {
	// LastSeq is the sequence of the newest message ever appended (0 for a
	// session that was never written or was deleted). It never goes back,
	// even when retention trims old messages, except through Delete.
	LastSeq uint64
	// FirstSeq is the sequence of the oldest message still stored (0 when
	// there is none).
	FirstSeq uint64
}

// AppendOptions bound what Append keeps.
type AppendOptions struct {
	// MaxMessages caps the number of messages the session keeps: after the
	// append, messages past the cap are deleted oldest first in the same
	// atomic write. Zero means no cap.
	MaxMessages int
	// Quota is the tenant's: an append that would pass it (after its
	// trim) fails with a *QuotaError and writes nothing. The zero Quota
	// admits everything.
	Quota Quota
}

// SessionStore keeps each session's messages in sequence order.
type SessionStore interface {
	// Meta returns the session's sequence bounds; a session never written
	// returns the zero SessionMeta and no error.
	Meta(ctx context.Context, key SessionKey) (SessionMeta, error)

	// Append atomically stores msgs as the next messages of the session, on
	// the condition that the session's LastSeq is still expectedLast. The
	// messages must carry consecutive Seq values starting at expectedLast+1.
	// When another writer got there first it fails with ErrSequenceConflict
	// and writes nothing. When Append returns nil the messages are durable.
	Append(ctx context.Context, key SessionKey, expectedLast uint64, msgs []Message, opts AppendOptions) (SessionMeta, error)

	// Page returns up to limit messages with Seq < before (before == 0 means
	// from the newest), newest first, skipping messages created before
	// notBefore (expired by retention but not yet swept). It is one reverse
	// prefix scan.
	Page(ctx context.Context, key SessionKey, before uint64, limit int, notBefore time.Time) ([]Message, error)

	// DeleteSession removes the session's messages and metadata. Deleting a
	// session that does not exist is not an error.
	DeleteSession(ctx context.Context, key SessionKey) error
}
