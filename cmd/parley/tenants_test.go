package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
)

type reloadCounter struct{ failed int }

func (c *reloadCounter) ConfigReloadFailed() { c.failed++ }

// A reload builds every tenant's model again: a new provider applies to
// the next chat, and a file whose apiKeyEnv variable is unset keeps the
// whole running config, its models included, as a bad file does.
func TestReloadRebuildsTheTenantsModels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.json")
	write := func(modelJSON string) {
		t.Helper()
		body := `{"tenants": [{"id": "acme", "apiKeys": [{"id": "k", "hash": "` + tenants.HashKey("acme-key") + `"}], "model": ` + modelJSON + `}]}`
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PARLEY_TEST_UPSTREAM_KEY", "sk-test")
	write(`{"provider": "mock"}`)
	reg, err := tenants.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mock := model.Mock{}
	models := &tenantModels{mock: mock}
	if err := models.build(reg); err != nil {
		t.Fatal(err)
	}
	counter := &reloadCounter{}
	n := &node{tenants: reg, models: models, reloads: counter, cfg: serveConfig{TenantsFile: path}}
	logger := testkit.NewLogger(t)
	if models.For("acme") != model.Model(mock) {
		t.Fatalf("a mock tenant's model is %T", models.For("acme"))
	}

	write(`{"provider": "openai", "baseURL": "http://127.0.0.1:9/v1", "name": "m", "apiKeyEnv": "PARLEY_TEST_UPSTREAM_KEY"}`)
	n.reload(logger)
	if counter.failed != 0 {
		t.Fatal("a valid file failed to reload")
	}
	upstream := models.For("acme")
	if upstream == model.Model(mock) {
		t.Fatal("after the reload acme still has the mock")
	}

	write(`{"provider": "mock", "apiKeyEnv": "PARLEY_TEST_UNSET_KEY"}`)
	n.reload(logger) // valid, and a mock needs no key: it applies
	write(`{"provider": "openai", "baseURL": "http://127.0.0.1:9/v1", "name": "m2", "apiKeyEnv": "PARLEY_TEST_UNSET_KEY"}`)
	n.reload(logger)
	if counter.failed != 1 {
		t.Fatalf("%d failed reloads counted, want 1", counter.failed)
	}
	if models.For("acme") != model.Model(mock) {
		t.Fatalf("a reload that failed changed the model to %T", models.For("acme"))
	}
	if got, _ := n.tenants.Tenant("acme"); got.Model.Provider != model.ProviderMock {
		t.Fatalf("a reload that failed put provider %q in force", got.Model.Provider)
	}
	if models.For("globex") != model.Model(mock) {
		t.Fatal("an unknown tenant does not get the mock")
	}
}
