package tenants

import (
	"fmt"
	"os"
	"time"

	"github.com/parley-chat/parley/actors/model"
)

// Model is the model a tenant's sessions use (docs/models.md): a provider
// entry, the prompt template its replies start from, and the entries to
// fall back to.
type Model struct {
	// Provider is "mock" (the default) or "openai". A file of the first
	// version, {"name": "mock"} without a provider, still means the mock.
	Provider string `json:"provider" validate:"omitempty,oneof=mock openai"`
	// BaseURL is the API root (default https://api.openai.com/v1).
	BaseURL string `json:"baseURL" validate:"omitempty,baseurl"`
	// Name is the model asked for; required for openai.
	Name string `json:"name" validate:"max=256"`
	// APIKeyEnv names the environment variable holding the key; the key
	// is never in the file. Empty sends no key (a local server).
	APIKeyEnv       string   `json:"apiKeyEnv" validate:"omitempty,max=128,envname"`
	MaxTokens       int      `json:"maxTokens" validate:"gte=0,lte=10000000"`
	Temperature     *float64 `json:"temperature" validate:"omitempty,gte=0,lte=2"`
	TimeoutSeconds  int      `json:"timeoutSeconds" validate:"gte=0,lte=3600"`
	ContextMessages int      `json:"contextMessages" validate:"gte=0,lte=1000"`
	PromptTemplate  string   `json:"promptTemplate" validate:"max=65536"`
	// Fallbacks are tried in order when the entry before fails before its
	// first token.
	Fallbacks []Fallback `json:"fallbacks" validate:"max=8,dive"`
}

// Fallback is one fallback entry. A field left out is the primary entry's
// (so {"name": "gpt-4o-mini"} is another model of the same endpoint), but
// the name, which every fallback must give, and the key of a fallback on
// another baseURL: the primary's key is never sent to another endpoint.
type Fallback struct {
	Provider        string   `json:"provider" validate:"omitempty,oneof=mock openai"`
	BaseURL         string   `json:"baseURL" validate:"omitempty,baseurl"`
	Name            string   `json:"name" validate:"required,max=256"`
	APIKeyEnv       string   `json:"apiKeyEnv" validate:"omitempty,max=128,envname"`
	MaxTokens       int      `json:"maxTokens" validate:"gte=0,lte=10000000"`
	Temperature     *float64 `json:"temperature" validate:"omitempty,gte=0,lte=2"`
	TimeoutSeconds  int      `json:"timeoutSeconds" validate:"gte=0,lte=3600"`
	ContextMessages int      `json:"contextMessages" validate:"gte=0,lte=1000"`
}

// checkModel is what a struct tag cannot say: an openai entry names its
// model, and a model named without a provider is a mistake, not the mock.
func checkModel(i int, m Model) error {
	switch {
	case m.Provider == "" && m.Name != "" && m.Name != model.ProviderMock:
		return fmt.Errorf("tenants file: tenants[%d].model.name: %q needs \"provider\": \"openai\" (without a provider the model is the mock)", i, m.Name)
	case m.Provider == model.ProviderOpenAI && m.Name == "":
		return fmt.Errorf("tenants file: tenants[%d].model.name: is required for provider openai", i)
	}
	return nil
}

// entries are the tenant's model entries in the order they are tried, with
// fallbacks completed from the primary and keys read through getenv.
func (t *Tenant) entries(i int, getenv func(string) (string, bool)) ([]model.Config, error) {
	m := t.Model
	primary := model.Config{
		Provider: m.Provider, BaseURL: m.BaseURL, Name: m.Name, MaxTokens: m.MaxTokens, Temperature: m.Temperature,
		Timeout: time.Duration(m.TimeoutSeconds) * time.Second, ContextMessages: m.ContextMessages,
	}
	var err error
	if primary.APIKey, err = apiKey(getenv, m.APIKeyEnv, fmt.Sprintf("tenants[%d].model.apiKeyEnv", i), primary.Provider); err != nil {
		return nil, err
	}
	out := []model.Config{primary}
	for j, f := range m.Fallbacks {
		e := primary
		e.Name = f.Name
		if f.Provider != "" {
			e.Provider = f.Provider
		}
		if f.BaseURL != "" && f.BaseURL != primary.BaseURL {
			// Another endpoint: the primary's key is not for it.
			e.BaseURL, e.APIKey = f.BaseURL, ""
		}
		if f.MaxTokens != 0 {
			e.MaxTokens = f.MaxTokens
		}
		if f.Temperature != nil {
			e.Temperature = f.Temperature
		}
		if f.TimeoutSeconds != 0 {
			e.Timeout = time.Duration(f.TimeoutSeconds) * time.Second
		}
		if f.ContextMessages != 0 {
			e.ContextMessages = f.ContextMessages
		}
		if f.APIKeyEnv != "" {
			if e.APIKey, err = apiKey(getenv, f.APIKeyEnv, fmt.Sprintf("tenants[%d].model.fallbacks[%d].apiKeyEnv", i, j), e.Provider); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// apiKey reads the key variable name names, failing with the field when it
// is unset or empty. The mock needs no key.
func apiKey(getenv func(string) (string, bool), name, field, provider string) (string, error) {
	if name == "" || provider != model.ProviderOpenAI {
		return "", nil
	}
	key, ok := getenv(name)
	if !ok || key == "" {
		return "", fmt.Errorf("tenants file: %s: %w: %s", field, model.ErrNoAPIKey, name)
	}
	return key, nil
}

// Models builds every tenant's model, checking at start what only the
// environment can tell (each apiKeyEnv variable is set), so that a missing
// key stops the node instead of failing its tenant's chats. Keys are read
// when it is called (a reload of the file calls it again). Mock entries are mock. The returned
// function is session.Config.Models: a tenant's model, mock for any other.
func (r *Registry) Models(mock model.Model, chain model.ChainConfig, getenv func(string) (string, bool)) (func(tenant string) model.Model, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	order := r.cur.Load().order
	models := make(map[string]model.Model, len(order))
	for i, t := range order {
		entries, err := t.entries(i, getenv)
		if err != nil {
			return nil, err
		}
		m, err := model.New(entries, mock, chain)
		if err != nil {
			return nil, fmt.Errorf("tenants file: tenants[%d].model: %w", i, err)
		}
		models[t.ID] = m
	}
	return func(tenant string) model.Model {
		if m, ok := models[tenant]; ok {
			return m
		}
		return mock
	}, nil
}

// validEnvName accepts what a shell can export: a letter or _, then
// letters, digits and _.
func validEnvName(s string) bool {
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}
