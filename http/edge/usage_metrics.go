package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/persistence"
)

// usageCollector reports each tenant's storage usage and quotas at every
// scrape, read from the store (which on the replicated store is this
// member's copy of the state every member shares). Its label set is
// bounded: tenants come from the tenants file, quotas are three names.
type usageCollector struct {
	tenants func() []string
	quota   func(tenant string) persistence.Quota
	usage   persistence.UsageReader

	used, limit *prometheus.Desc
}

// WatchUsage makes /metrics report every tenant's usage of usage (the
// node's store) against its quota: parley_tenant_usage{tenant,quota} and
// parley_tenant_quota{tenant,quota}, quota one of the tenants file's names
// (maxStoredBytes, maxSessions, maxCacheEntries). tenants lists the ids
// to report; both functions are called at every scrape, so a reloaded
// tenants file shows at once. Call it once, before serving.
func (m *Metrics) WatchUsage(tenants func() []string, quota func(tenant string) persistence.Quota, usage persistence.UsageReader) {
	m.registry.MustRegister(&usageCollector{
		tenants: tenants, quota: quota, usage: usage,
		used: prometheus.NewDesc("parley_tenant_usage",
			"What a tenant stores, in the unit of each quota (bytes, sessions, cache entries).", []string{"tenant", "quota"}, nil),
		limit: prometheus.NewDesc("parley_tenant_quota",
			"A tenant's quota from the tenants file (0: none).", []string{"tenant", "quota"}, nil),
	})
}

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.used
	ch <- c.limit
}

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, tenant := range c.tenants() {
		q := c.quota(tenant)
		limits := [...]int64{q.MaxStoredBytes, q.MaxSessions, q.MaxCacheEntries}
		for i, name := range quotaNames {
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(limits[i]), tenant, name)
		}
		u, err := c.usage.Usage(tenant)
		if err != nil {
			continue // the store is closing or its copy is down; /readyz says so
		}
		used := [...]int64{u.StoredBytes, u.Sessions, u.CacheEntries}
		for i, name := range quotaNames {
			ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(used[i]), tenant, name)
		}
	}
}

var quotaNames = [...]string{persistence.QuotaStoredBytes, persistence.QuotaSessions, persistence.QuotaCacheEntries}
