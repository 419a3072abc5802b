package tenants

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-playground/validator/v10"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/persistence"
)

// HashPrefix starts every stored key hash.
const HashPrefix = "sha256:"

// HashKey returns the hash the tenants file stores for an API key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return HashPrefix + hex.EncodeToString(sum[:])
}

var keyHashPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Registry answers who a key belongs to and what a tenant's limits are.
// It is safe for concurrent use. Its contents change only as a whole, by
// Replace (a reload of the tenants file): every call sees either the old
// file or the new one, never a mix.
type Registry struct {
	cur atomic.Pointer[snapshot]
}

// snapshot is one parsed tenants file; it is never modified.
type snapshot struct {
	tenants map[string]*Tenant
	order   []*Tenant // as in the file, for errors that name tenants[i]
	keys    []storedKey
	origins map[string]bool // every tenant's cors.allowedOrigins
}

type storedKey struct {
	digest []byte // the 32 bytes of the SHA-256
	id     string
	tenant *Tenant
}

// Load reads and validates a tenants file.
func Load(path string) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Parse decodes a tenants file strictly (unknown fields and trailing data
// are errors) and validates it; the error names the field at fault, as a
// JSON path such as tenants[0].apiKeys[1].hash.
func Parse(r io.Reader) (*Registry, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var file File
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	if dec.More() {
		return nil, errors.New("tenants file: trailing data after the JSON object")
	}
	if err := validate.Struct(file); err != nil {
		return nil, fieldError(err)
	}
	reg := &snapshot{tenants: map[string]*Tenant{}, origins: map[string]bool{}}
	hashes := map[string]string{}
	for i, t := range file.Tenants {
		if _, dup := reg.tenants[t.ID]; dup {
			return nil, fmt.Errorf("tenants file: tenants[%d].id: %q appears twice", i, t.ID)
		}
		if err := checkModel(i, t.Model); err != nil {
			return nil, err
		}
		t := t.withDefaults()
		reg.tenants[t.ID] = &t
		for _, o := range t.CORS.AllowedOrigins {
			reg.origins[o] = true
		}
		reg.order = append(reg.order, &t)
		ids := map[string]bool{}
		for j, k := range t.APIKeys {
			if ids[k.ID] {
				return nil, fmt.Errorf("tenants file: tenants[%d].apiKeys[%d].id: %q appears twice in tenant %q", i, j, k.ID, t.ID)
			}
			ids[k.ID] = true
			if other, dup := hashes[k.Hash]; dup {
				return nil, fmt.Errorf("tenants file: tenants[%d].apiKeys[%d].hash: the same key is already tenant %q's", i, j, other)
			}
			hashes[k.Hash] = t.ID
			digest, _ := hex.DecodeString(strings.TrimPrefix(k.Hash, HashPrefix))
			reg.keys = append(reg.keys, storedKey{digest: digest, id: k.ID, tenant: reg.tenants[t.ID]})
		}
	}
	out := &Registry{}
	out.cur.Store(reg)
	return out, nil
}

// Replace makes next's tenants this registry's, at once for every caller:
// a key next does not have is refused from the next request on. next
// itself is not changed.
func (r *Registry) Replace(next *Registry) { r.cur.Store(next.cur.Load()) }

// Len is the number of tenants.
func (r *Registry) Len() int { return len(r.cur.Load().tenants) }

// Authenticate returns the tenant and key id an API key belongs to. The
// key's hash is compared with every stored hash in constant time, so the
// time taken says nothing about which stored hash came close.
func (r *Registry) Authenticate(key string) (tenant *Tenant, keyID string, ok bool) {
	if key == "" {
		return nil, "", false
	}
	sum := sha256.Sum256([]byte(key))
	for _, k := range r.cur.Load().keys {
		if subtle.ConstantTimeCompare(sum[:], k.digest) == 1 {
			tenant, keyID, ok = k.tenant, k.id, true
		}
	}
	return tenant, keyID, ok
}

// AnyAllowsOrigin reports whether some tenant allows browser pages from
// origin: a CORS preflight carries no key, so it is answered for these.
func (r *Registry) AnyAllowsOrigin(origin string) bool {
	return r.cur.Load().origins[origin]
}

// Tenant returns a tenant by id.
func (r *Registry) Tenant(id string) (*Tenant, bool) {
	t, ok := r.cur.Load().tenants[id]
	return t, ok
}

// Retention is session.Config.Retention for these tenants: a tenant's own
// retention, the defaults for any other.
func (r *Registry) Retention(tenant string) session.Retention {
	if t, ok := r.Tenant(tenant); ok {
		return t.Retention()
	}
	return session.DefaultRetention
}

// Quota is cache.Config.Quota for these tenants: a tenant's quota, none
// for a tenant the file does not have (it cannot authenticate).
func (r *Registry) Quota(tenant string) persistence.Quota {
	if t, ok := r.Tenant(tenant); ok {
		return t.Quota()
	}
	return persistence.Quota{}
}

// IDs returns the tenants' ids, sorted.
func (r *Registry) IDs() []string {
	ids := slices.Collect(maps.Keys(r.cur.Load().tenants))
	slices.Sort(ids)
	return ids
}

// Prompt is session.Config.Prompt for these tenants: a tenant's prompt
// template, the default for any other.
func (r *Registry) Prompt(tenant string) string {
	if t, ok := r.Tenant(tenant); ok {
		return t.Model.PromptTemplate
	}
	return DefaultPromptTemplate
}

var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	_ = v.RegisterValidation("tenantid", func(fl validator.FieldLevel) bool {
		return persistence.ValidTenantID(fl.Field().String())
	})
	_ = v.RegisterValidation("keyhash", func(fl validator.FieldLevel) bool {
		return keyHashPattern.MatchString(fl.Field().String())
	})
	_ = v.RegisterValidation("origin", func(fl validator.FieldLevel) bool {
		return validOrigin(fl.Field().String())
	})
	_ = v.RegisterValidation("baseurl", func(fl validator.FieldLevel) bool {
		return model.CheckBaseURL(fl.Field().String()) == nil
	})
	_ = v.RegisterValidation("envname", func(fl validator.FieldLevel) bool {
		return validEnvName(fl.Field().String())
	})
	return v
}

// validOrigin reports whether s is an origin exactly as a browser
// serializes it in the Origin header, so that comparing strings is
// comparing origins: http or https, a lowercase host, a port only when it
// is not the scheme's default, nothing after it.
func validOrigin(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return false
	}
	if port := u.Port(); (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		return false
	}
	return s == u.Scheme+"://"+u.Host && s == strings.ToLower(s) && !strings.Contains(s, "*")
}

// fieldError turns the first validation failure into "tenants file:
// tenants[0].apiKeys[1].hash: <why>".
func fieldError(err error) error {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) || len(verrs) == 0 {
		return fmt.Errorf("tenants file: %w", err)
	}
	fe := verrs[0]
	path := fe.Namespace()
	if _, rest, ok := strings.Cut(path, "."); ok {
		path = rest // drop the root type name
	}
	return fmt.Errorf("tenants file: %s: %s", path, explain(fe))
}

func explain(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min":
		return "needs at least " + fe.Param() + " entry"
	case "tenantid":
		return fmt.Sprintf("%q is not a tenant id (1-64 of a-z 0-9 _ -)", fe.Value())
	case "keyhash":
		return `must be "sha256:" and 64 lowercase hex digits (parley hash-key prints it)`
	case "oneof":
		return fmt.Sprintf("%v is not one of: %s", fe.Value(), fe.Param())
	case "gte":
		return "must be " + fe.Param() + " or more"
	case "lte", "max":
		return "must be at most " + fe.Param()
	case "printascii":
		return "must be printable ASCII"
	case "origin":
		return fmt.Sprintf("%q is not an origin: scheme://host[:port] as a browser sends it (lowercase, no path, no default port, no wildcard)", fe.Value())
	case "baseurl":
		return fmt.Sprintf("%q is not an absolute http or https URL", fe.Value())
	case "envname":
		return fmt.Sprintf("%q is not an environment variable name (letters, digits, _)", fe.Value())
	}
	return "fails " + fe.Tag()
}
