package persistence

import (
	"regexp"
	"strings"
	"testing"
)

// tenantIDReference is the rule ValidTenantID states, as a pattern.
var tenantIDReference = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

func TestValidTenantIDFollowsItsRule(t *testing.T) {
	cases := []string{
		"", "a", "acme", "acme-corp_2", "-", "_", "0", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"Acme", "acme corp", "acme:1", "acme/x", "acme.x", "é", "acme\x00", "a\n", "z", "9", "{", "`", "@", "[",
	}
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "ab"+string([]byte{byte(b)}))
	}
	for _, id := range cases {
		if got, want := ValidTenantID(id), tenantIDReference.MatchString(id); got != want {
			t.Errorf("ValidTenantID(%q) = %v, want %v", id, got, want)
		}
	}
}

func BenchmarkValidTenantID(b *testing.B) {
	for b.Loop() {
		if !ValidTenantID("bench-tenant_1") {
			b.Fatal("refused a valid id")
		}
	}
}
