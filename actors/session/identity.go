package session

import (
	"fmt"
	"strings"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/persistence"
)

// Kind is the ChatSession grain kind.
const Kind = "ChatSession"

// ErrBadIdentity: a tenant or session id that is not well formed. Such an
// identity never reaches a grain or storage. It is also
// grains.ErrInvalidArgument.
var ErrBadIdentity = &grains.Error{Kind: grains.ErrInvalidArgument, Message: "invalid session identity"}

// Identity returns the grain identity of a tenant's session, or
// ErrBadIdentity when either id is malformed (tenant ids are lowercase
// [a-z0-9_-]{1,64}, session ids canonical lowercase UUIDs).
func Identity(tenant, sessionID string) (string, error) {
	key := persistence.SessionKey{Tenant: tenant, Session: sessionID}
	if err := validKey(key); err != nil {
		return "", err
	}
	return tenant + ":" + sessionID, nil
}

// ParseIdentity is the inverse of Identity.
func ParseIdentity(identity string) (persistence.SessionKey, error) {
	tenant, sessionID, ok := strings.Cut(identity, ":")
	if !ok {
		return persistence.SessionKey{}, fmt.Errorf("%w: %q has no ':'", ErrBadIdentity, identity)
	}
	key := persistence.SessionKey{Tenant: tenant, Session: sessionID}
	return key, validKey(key)
}

func validKey(k persistence.SessionKey) error {
	switch {
	case !persistence.ValidTenantID(k.Tenant):
		return fmt.Errorf("%w: tenant %q", ErrBadIdentity, k.Tenant)
	case !persistence.ValidSessionID(k.Session):
		return fmt.Errorf("%w: session %q is not a lowercase UUID", ErrBadIdentity, k.Session)
	}
	return nil
}

// Idempotent marks History as a read (cluster.Idempotent): a call whose
// node fails mid-call is sent again to the session's new activation.
func (*History) Idempotent() bool { return true }

// Idempotent marks a Chat that carries an idempotency key as safe to send
// again (cluster.Idempotent): a call whose node fails mid-call goes to the
// session's new activation, which finds the key and stores nothing twice.
func (c *Chat) Idempotent() bool { return c.GetIdempotencyKey() != "" }

// Idempotent marks an Append that carries an idempotency key as safe to
// send again (cluster.Idempotent), like Chat.
func (a *Append) Idempotent() bool { return a.GetIdempotencyKey() != "" }
