package cache

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/parley-chat/parley/persistence"
)

// Kind is the Cache grain kind.
const Kind = "Cache"

// MaxKeyBytes bounds a key: it is a client's {key} path segment, and the
// store refuses longer keys so that no entry's key dominates a page of the
// LSM tree.
const MaxKeyBytes = 512

// identityInfix separates the tenant from the key. Tenant ids never hold
// ':', so the first ':' of an identity always ends the tenant, and the key
// after the infix may hold anything, "other:cache:x" included.
const identityInfix = ":" + persistence.SpaceCache + ":"

// Identity returns the grain identity of a tenant's cache key,
// tenant + ":cache:" + key, or ErrInvalidKey when the tenant id is malformed
// (see persistence.ValidTenantID) or the key is not 1..MaxKeyBytes bytes of
// valid UTF-8 without NUL. It is the only way Parley builds a Cache
// identity, so no caller can name another tenant's entry.
func Identity(tenant, key string) (string, error) {
	if err := validKey(tenant, key); err != nil {
		return "", err
	}
	return tenant + identityInfix + key, nil
}

// ParseIdentity is the inverse of Identity: the tenant is everything before
// the first ':', which must be followed by "cache:"; the key is the rest.
func ParseIdentity(identity string) (persistence.KVKey, error) {
	tenant, rest, ok := strings.Cut(identity, ":")
	if !ok {
		return persistence.KVKey{}, fmt.Errorf("%w: identity %q has no ':'", ErrInvalidKey, identity)
	}
	key, ok := strings.CutPrefix(rest, persistence.SpaceCache+":")
	if !ok {
		return persistence.KVKey{}, fmt.Errorf("%w: identity %q is not tenant:cache:key", ErrInvalidKey, identity)
	}
	if err := validKey(tenant, key); err != nil {
		return persistence.KVKey{}, err
	}
	return persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: key}, nil
}

// validKey checks a tenant id and a key. Keys are free text otherwise:
// ':' and '/' stay inside the key, and "../x" names nothing but itself.
func validKey(tenant, key string) error {
	switch {
	case !persistence.ValidTenantID(tenant):
		return fmt.Errorf("%w: tenant %q", ErrInvalidKey, tenant)
	case len(key) == 0 || len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: key of %d bytes (want 1 to %d)", ErrInvalidKey, len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidKey)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key contains NUL", ErrInvalidKey)
	}
	return nil
}

// Idempotent marks Get as a read (cluster.Idempotent): a call whose node
// fails mid-call is sent again to the entry's new activation.
func (*Get) Idempotent() bool { return true }
