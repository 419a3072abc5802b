// Package cache is the tenant-scoped key-value cache (the plan's Workers KV)
// as a grain kind: one Cache activation per (tenant, key), identity
// "tenantId:cache:key", holding the entry in memory while it lives in
// persistence.KVStore.
//
// One activation per key serializes every read and write of that key
// wherever in the cluster they come from, so a Put acknowledged on one node
// is what a Get on any other node returns next (read-your-write), where
// Workers KV may serve the old value for up to 60 s.
//
// Parley's own code uses Client; it validates keys, values and TTLs before
// any grain is called and returns this package's sentinel errors.
//
// docs/caching.md describes identity, TTLs, durability and limits.
package cache
