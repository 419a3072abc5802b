// Package ratelimit is the RateLimiter grain and its client.
//
// One grain, identity "tenantId:ratelimit:scope:id", counts one key's
// requests with a sliding window counter: constant memory per key, one
// decision per message, no storage I/O on the request path (counters are
// written behind at a bounded interval and when the grain passivates).
// Limits travel with every Check, so the grain never reads the tenants file.
//
// A Limiter asks every applicable scope (tenant, user, ip) at once, allows
// a request only when all allow, refunds the scopes that allowed a request
// another refused, and applies the tenant's policy when a limiter cannot be
// reached in time. IPKey derives the ip scope's key from the client address
// the HTTP edge finds (edge.RealIP).
//
// docs/rate-limiting.md describes the algorithm, its accuracy bound, the
// headers, the failure policy and what a crash can forget.
package ratelimit
