package cache

// Observer is told the outcome of every Get that reached its grain, so the
// HTTP edge can count hits and misses without the cache knowing about
// metrics.
//
// CacheGet is called on the goroutine that called Client.Get, before Get
// returns, possibly from many goroutines at once: it must be safe for
// concurrent use and must not block. A Get refused by validation or that
// failed is not reported.
type Observer interface {
	// CacheGet reports one answered Get: hit is false for a miss.
	CacheGet(hit bool)
}
