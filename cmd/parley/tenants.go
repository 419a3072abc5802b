package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/tenants"
)

// demoTenant is the tenant `make run` creates when no tenants file is given.
const demoTenant = "demo"

// tenantsPath is the file loadTenants reads: --tenants, or the data dir's
// tenants.json.
func tenantsPath(cfg serveConfig) string {
	if cfg.TenantsFile != "" {
		return cfg.TenantsFile
	}
	return filepath.Join(cfg.DataDir, "tenants.json")
}

// reloadObserver counts reloads of the tenants file that failed.
type reloadObserver interface{ ConfigReloadFailed() }

// reload is SIGHUP: it reads the tenants file again and, when the whole
// file is valid, puts it in force at once (a removed key is refused from
// the next request on). A file that does not load keeps the running
// config; one line says why, naming the field, and the failure is counted.
func (n *node) reload(logger *slog.Logger) {
	path := tenantsPath(n.cfg)
	next, err := tenants.Load(path)
	if err != nil {
		n.reloads.ConfigReloadFailed()
		logger.Error("tenants file not reloaded; the running config stays", "err", err)
		return
	}
	// The models of the new file, keys read again: a tenant whose
	// apiKeyEnv variable is unset keeps the whole running config, as a
	// bad file does.
	if err := n.models.build(next); err != nil {
		n.reloads.ConfigReloadFailed()
		logger.Error("tenants file not reloaded; the running config stays", "err", err)
		return
	}
	n.tenants.Replace(next)
	logger.Info("tenants file reloaded", "file", path, "tenants", next.Len())
}

// tenantModels is session.Config.Models across reloads of the tenants
// file: build makes every tenant's model from a registry (reading each
// apiKeyEnv variable then), and For answers from the last one built. A
// reply in progress keeps the model it started with; the next chat of a
// session takes the new one. It is safe for concurrent use.
type tenantModels struct {
	mock  model.Model       // the mock tenants without a provider get, and unknown tenants
	chain model.ChainConfig // retries and the observer, shared by every tenant
	cur   atomic.Pointer[func(tenant string) model.Model]
}

// build makes reg's models the ones For answers with, or leaves the
// current ones and names the field at fault.
func (m *tenantModels) build(reg *tenants.Registry) error {
	models, err := reg.Models(m.mock, m.chain, nil)
	if err != nil {
		return err
	}
	m.cur.Store(&models)
	return nil
}

// For returns tenant's model.
func (m *tenantModels) For(tenant string) model.Model {
	if f := m.cur.Load(); f != nil {
		return (*f)(tenant)
	}
	return m.mock
}

// loadTenants loads --tenants, or, without one, the data dir's
// tenants.json, creating it with a demo tenant on first run and printing
// that tenant's key to out: the only time the key is ever shown.
func loadTenants(cfg serveConfig, out io.Writer) (*tenants.Registry, error) {
	if cfg.TenantsFile != "" {
		reg, err := tenants.Load(cfg.TenantsFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--tenants: %w", err)}
		}
		return reg, nil
	}
	path := tenantsPath(cfg)
	reg, err := tenants.Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return nil, usageError{err}
		}
		return reg, nil
	}
	key, err := newAPIKey()
	if err != nil {
		return nil, err
	}
	file := tenants.File{Tenants: []tenants.Tenant{{
		ID:      demoTenant,
		APIKeys: []tenants.APIKey{{ID: "dev", Hash: tenants.HashKey(key)}},
	}}}
	body, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, append(body, '\n'), 0o600); err != nil {
		return nil, usageError{fmt.Errorf("--data-dir: writing the demo tenants file: %w", err)}
	}
	fmt.Fprintf(out, "Created %s with tenant %q. Its development API key, shown only this once:\n\n    %s\n\nTry: curl -N -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n       -d '{\"sessionId\":\"5f0c6e3a-8d7b-4b1e-9a53-2f3b1c9d7e10\",\"message\":\"Hello\"}' http://%s/chat\n\n",
		path, demoTenant, key, key, cfg.HTTPAddr)
	return tenants.Load(path)
}

func newAPIKey() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "pk_dev_" + hex.EncodeToString(b[:]), nil
}

// hashKey is `parley hash-key`: it reads one API key from stdin and prints
// the hash a tenants file stores for it.
func hashKey(stdin io.Reader, stdout io.Writer) error {
	line, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		return err
	}
	key := strings.TrimRight(string(line), "\r\n")
	if key == "" || strings.ContainsAny(key, "\r\n") {
		return usageError{errors.New("hash-key: give exactly one API key on stdin, e.g. echo -n \"$KEY\" | parley hash-key")}
	}
	fmt.Fprintln(stdout, tenants.HashKey(key))
	return nil
}
