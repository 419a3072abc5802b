package persistence

import (
	"fmt"
	"strings"
)

// Limits on KV keys. A space is one of a handful of constants in Parley's own
// code; a key comes from clients (the cache's {key} path segment), so its
// bound is what keeps one entry's key from dominating a page of the LSM tree.
const (
	maxKVSpaceLen = 32
	maxKVKeyLen   = 512
)

// ValidateSessionKey refuses what could escape the tenant's prefix or alias
// another session. Every store calls it before touching storage, even though
// the HTTP edge has already validated: a store is the last line of the
// tenant isolation the architecture promises.
func ValidateSessionKey(k SessionKey) error {
	if !ValidTenantID(k.Tenant) {
		return fmt.Errorf("%w: tenant %q", ErrInvalidKey, k.Tenant)
	}
	if !ValidSessionID(k.Session) {
		return fmt.Errorf("%w: session %q", ErrInvalidKey, k.Session)
	}
	return nil
}

// ValidateKVKey checks the three parts of a KV key. The space is lowercase
// letters only, so that "<space>:" ends at the first ':' and a key holding
// ':' cannot pose as another space's key.
func ValidateKVKey(k KVKey) error {
	if !ValidTenantID(k.Tenant) {
		return fmt.Errorf("%w: tenant %q", ErrInvalidKey, k.Tenant)
	}
	if !validSpace(k.Space) {
		return fmt.Errorf("%w: space %q", ErrInvalidKey, k.Space)
	}
	if len(k.Key) == 0 || len(k.Key) > maxKVKeyLen {
		return fmt.Errorf("%w: key of %d bytes (want 1 to %d)", ErrInvalidKey, len(k.Key), maxKVKeyLen)
	}
	if strings.IndexByte(k.Key, 0) >= 0 {
		return fmt.Errorf("%w: key contains NUL", ErrInvalidKey)
	}
	return nil
}

// ValidateTenant refuses a tenant id that ValidTenantID does not accept,
// for operations on a whole tenant (DeleteTenant).
func ValidateTenant(tenant string) error {
	if !ValidTenantID(tenant) {
		return fmt.Errorf("%w: tenant %q", ErrInvalidKey, tenant)
	}
	return nil
}

func validSpace(s string) bool {
	if len(s) == 0 || len(s) > maxKVSpaceLen {
		return false
	}
	for i := range len(s) {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}
