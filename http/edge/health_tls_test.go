package edge

import (
	"net/http"
	"strings"
	"testing"
)

type securedHealth struct {
	fakeHealth
	tls bool
}

func (s securedHealth) ClusterTLS() bool { return s.tls }

func TestReadyzSaysWhetherTheClusterPlanesAreSecured(t *testing.T) {
	for _, tc := range []struct {
		health Health
		want   string
	}{
		{securedHealth{tls: true}, `"tls":true`},
		{securedHealth{tls: false}, `"tls":false`},
	} {
		rec := do(newTestEdge(t, tc.health), "GET", "/readyz", nil)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.want) {
			t.Fatalf("readyz %d %s, want %s", rec.Code, rec.Body, tc.want)
		}
	}
	if rec := do(newTestEdge(t, fakeHealth{}), "GET", "/readyz", nil); strings.Contains(rec.Body.String(), `"tls"`) {
		t.Fatalf("a health that does not know says %s", rec.Body)
	}
}
