package ratelimit

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/parley-chat/parley/persistence"
)

// Kind is the RateLimiter grain kind, separate from ChatSession.
const Kind = "RateLimiter"

// Scope says what a limit counts.
type Scope string

// The scopes. A request is checked against each that applies.
const (
	// ScopeTenant counts every request of a tenant; the id is the tenant's.
	ScopeTenant Scope = "tenant"
	// ScopeUser counts one user's requests (X-User-Id, else the API key's id).
	ScopeUser Scope = "user"
	// ScopeIP counts one client address (IPKey of edge.ClientIP).
	ScopeIP Scope = "ip"
	// ScopeTokens counts a tenant's model tokens (rateLimit.tokensPerMinute);
	// the id is the tenant's. A chat checks it for one token, and the
	// reply's usage is charged when it ends (Limiter.Charge).
	ScopeTokens Scope = "tokens"
)

// Valid reports whether s is one of the scopes.
func (s Scope) Valid() bool {
	return s == ScopeTenant || s == ScopeUser || s == ScopeIP || s == ScopeTokens
}

// MaxIDLen bounds an id, in bytes.
const MaxIDLen = 256

// identityInfix separates the tenant from the scope. Tenant ids never hold
// ':', so the tenant always ends at the first one.
const identityInfix = ":ratelimit:"

// Key is what an identity names: one tenant's counter for one scope and id.
type Key struct {
	Tenant string // a valid tenant id
	Scope  Scope  // tenant, user or ip
	ID     string // 1 to MaxIDLen bytes of UTF-8 without NUL
}

// Identity returns the grain identity of a tenant's limiter for one scope
// and id: tenant + ":ratelimit:" + scope + ":" + id. It fails with
// ErrBadIdentity unless the tenant is a valid tenant id, the scope one of
// the Scope constants, and the id 1 to MaxIDLen bytes of valid UTF-8
// without NUL (it may hold ':').
func Identity(tenant string, scope Scope, id string) (string, error) {
	k := Key{Tenant: tenant, Scope: scope, ID: id}
	if err := k.validate(); err != nil {
		return "", err
	}
	return k.identity(), nil
}

// ParseIdentity is the inverse of Identity.
func ParseIdentity(identity string) (Key, error) {
	tenant, rest, ok := strings.Cut(identity, identityInfix)
	if !ok {
		return Key{}, fmt.Errorf("%w: %q lacks %q", ErrBadIdentity, identity, identityInfix)
	}
	scope, id, ok := strings.Cut(rest, ":")
	if !ok {
		return Key{}, fmt.Errorf("%w: %q has no scope", ErrBadIdentity, identity)
	}
	k := Key{Tenant: tenant, Scope: Scope(scope), ID: id}
	return k, k.validate()
}

func (k Key) identity() string { return k.Tenant + identityInfix + string(k.Scope) + ":" + k.ID }

// storeKey is where the counters are kept: one KV entry per key, in the
// tenant's prefix.
func (k Key) storeKey() persistence.KVKey {
	return persistence.KVKey{Tenant: k.Tenant, Space: persistence.SpaceRateLimit, Key: string(k.Scope) + ":" + k.ID}
}

func (k Key) validate() error {
	switch {
	case !persistence.ValidTenantID(k.Tenant):
		return fmt.Errorf("%w: tenant %q", ErrBadIdentity, k.Tenant)
	case !k.Scope.Valid():
		return fmt.Errorf("%w: scope %q is not tenant, user or ip", ErrBadIdentity, k.Scope)
	case len(k.ID) == 0 || len(k.ID) > MaxIDLen:
		return fmt.Errorf("%w: id of %d bytes (want 1 to %d)", ErrBadIdentity, len(k.ID), MaxIDLen)
	case strings.IndexByte(k.ID, 0) >= 0:
		return fmt.Errorf("%w: id contains NUL", ErrBadIdentity)
	case !utf8.ValidString(k.ID):
		return fmt.Errorf("%w: id is not valid UTF-8", ErrBadIdentity)
	}
	return nil
}
