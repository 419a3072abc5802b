package persistence

import "errors"

// Errors returned by stores. Callers compare with errors.Is.
var (
	// ErrSequenceConflict: Append's expectedLast is not the session's
	// LastSeq, because another writer (a second activation of the same
	// session during a membership change) appended first. Nothing was
	// written; reload Meta and retry.
	ErrSequenceConflict = errors.New("session sequence conflict")
	// ErrInvalidKey: a tenant, session or KV key failed validation.
	ErrInvalidKey = errors.New("invalid storage key")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrQuotaExceeded: the write would pass one of the tenant's quotas
	// (a *QuotaError names which). Nothing was written; deleting data or
	// waiting for expiry makes room.
	ErrQuotaExceeded = errors.New("quota exceeded")
)
