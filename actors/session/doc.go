// Package session is the ChatSession grain: one virtual actor per chat
// session, identity "tenantId:sessionId", holding the session's sequence
// number and a bounded tail of recent messages in memory while the history
// itself lives in persistence.SessionStore.
//
// One activation serializes everything done to a session: appends get
// gapless sequence numbers in arrival order. Storage writes are conditional
// on the sequence, so should a membership change briefly leave two
// activations, the second one's write fails cleanly, it reloads and retries,
// and nothing is overwritten, duplicated or lost.
//
// A Chat or Append may carry an idempotency key (idempotency.go): sent
// again with it, it stores nothing twice.
//
// docs/sessions.md describes identity, idempotency keys, key layout,
// retention, passivation and what a crash can lose.
package session
