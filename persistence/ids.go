package persistence

import "regexp"

var (
	tenantIDPattern  = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	sessionIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// ValidTenantID reports whether id is a well-formed tenant id: 1 to 64
// lowercase letters, digits, '-' or '_'. It never contains ':', which is what
// keeps tenants' key prefixes apart.
func ValidTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

// ValidSessionID reports whether id is a UUID in its canonical lowercase
// form. The HTTP edge lowercases what clients send before it gets here.
func ValidSessionID(id string) bool { return sessionIDPattern.MatchString(id) }
