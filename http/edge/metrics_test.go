package edge

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// seriesCount is how many series the registry holds now.
func seriesCount(t *testing.T, m *Metrics) int {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		n += len(f.GetMetric())
	}
	return n
}

func TestMetricLabelsAreBoundedWhateverClientsSend(t *testing.T) {
	metrics := NewMetrics()
	h := newTestEdgeWith(t, fakeHealth{}, func(c *Config) { c.Metrics = metrics })
	send := func(method, path string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Method = method
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	// One request of each shape the random ones below take: an unknown
	// method and an unknown path, each with and without a key, and a
	// method too long for the header limit.
	send("BREW", "/coffee")
	send(strings.Repeat("BREW", 20<<10), "/coffee")
	send("BREW", "/chat")
	send(http.MethodGet, "/coffee")
	send(http.MethodPost, "/chat")
	before := seriesCount(t, metrics)

	rng := rand.New(rand.NewPCG(1, 2))
	letters := "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(letters[rng.IntN(len(letters))])
		}
		return b.String()
	}
	for i := range 1000 {
		method := word(1 + rng.IntN(12))
		if i%100 == 0 {
			method = word(50 << 10)
		}
		send(method, "/"+strings.ToLower(word(1+rng.IntN(20)))+"/"+word(rng.IntN(8)))
	}
	if after := seriesCount(t, metrics); after != before {
		t.Fatalf("1000 random methods and paths changed the series count from %d to %d", before, after)
	}
	if got := methodLabel("BREW"); got != "OTHER" {
		t.Fatalf("methodLabel(BREW) = %q", got)
	}
}

func TestGrainsActiveIsReadAtEveryScrape(t *testing.T) {
	metrics := NewMetrics()
	active := map[string]int{"RateLimiter": 3, "ChatSession": 1}
	metrics.WatchGrains([]string{"ChatSession", "RateLimiter"}, func(kind string) int { return active[kind] })
	scrape := func() string {
		rec := httptest.NewRecorder()
		metrics.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	for _, want := range []string{`parley_grains_active{kind="RateLimiter"} 3`, `parley_grains_active{kind="ChatSession"} 1`} {
		if body := scrape(); !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	active["RateLimiter"] = 0
	if body := scrape(); !strings.Contains(body, `parley_grains_active{kind="RateLimiter"} 0`) {
		t.Error("the gauge did not follow the count down to 0")
	}
}
