package model

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Providers a Config can name.
const (
	ProviderMock   = "mock"   // the deterministic Mock
	ProviderOpenAI = "openai" // any OpenAI-compatible Chat Completions endpoint
)

// Config is one entry of a tenant's model: a provider and how to call it.
// Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Provider is ProviderMock or ProviderOpenAI. Default mock.
	Provider string
	// BaseURL is the API root the provider's paths are appended to, such
	// as https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (Ollama).
	// Default https://api.openai.com/v1. openai only.
	BaseURL string
	// Name is the model asked for ("gpt-4o-mini", "llama3.2"). Required
	// for openai.
	Name string
	// APIKey is the bearer key; empty sends none (a local server).
	APIKey string
	// MaxTokens bounds the reply (max_tokens); 0 leaves it to the server.
	MaxTokens int
	// Temperature is sent when set.
	Temperature *float64
	// Timeout bounds one call, from sending the request to the last
	// chunk. Default 120 s.
	Timeout time.Duration
	// ContextMessages is how many of the session's most recent earlier
	// messages go with the request, after the prompt template as the
	// system message. Default 20. The session holds at most its tail
	// (session.Config.TailSize), so more than that sends the tail.
	ContextMessages int
}

// DefaultBaseURL is the openai provider's BaseURL when none is given.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultConfig returns an entry's defaults.
func DefaultConfig() Config {
	return Config{
		Provider:        ProviderMock,
		BaseURL:         DefaultBaseURL,
		Timeout:         120 * time.Second, // a long reply of a slow model
		ContextMessages: 20,                // the session's default tail
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Provider == "" {
		c.Provider = d.Provider
	}
	if c.BaseURL == "" {
		c.BaseURL = d.BaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.ContextMessages == 0 {
		c.ContextMessages = d.ContextMessages
	}
	return c
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	switch c.Provider {
	case "", ProviderMock:
		return nil
	case ProviderOpenAI:
	default:
		return fmt.Errorf("provider: %q is not one of: mock openai", c.Provider)
	}
	if c.BaseURL != "" {
		if err := CheckBaseURL(c.BaseURL); err != nil {
			return fmt.Errorf("baseURL: %w", err)
		}
	}
	switch {
	case c.Name == "":
		return errors.New("name: is required for provider openai")
	case c.MaxTokens < 0:
		return errors.New("maxTokens: must be 0 or more")
	case c.Timeout < 0:
		return errors.New("timeoutSeconds: must be 0 or more")
	case c.ContextMessages < 0:
		return errors.New("contextMessages: must be 0 or more")
	case c.Temperature != nil && (*c.Temperature < 0 || *c.Temperature > 2):
		return errors.New("temperature: must be between 0 and 2")
	}
	return nil
}

// CheckBaseURL accepts an absolute http or https URL with a host.
func CheckBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q does not parse: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	return nil
}

// ChainConfig is how a Chain retries and falls back.
type ChainConfig struct {
	// Retries is how many times an entry is called again after a 429 or
	// 5xx answered before its first token, before the next entry is
	// tried. Default 2; negative means none.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one, when the upstream names no Retry-After. Default 500 ms.
	Backoff time.Duration
	// MaxBackoff bounds every wait, Retry-After included: an upstream
	// that asks for longer is given up on and the next entry is tried at
	// once. Default 10 s.
	MaxBackoff time.Duration
	// Sleep waits d or until ctx is done; a real timer when nil. Tests
	// replace it to see the waits without taking them.
	Sleep func(ctx context.Context, d time.Duration) error
	// Observer is told about upstream calls; none when nil.
	Observer Observer
}

// DefaultChainConfig returns the retry defaults.
func DefaultChainConfig() ChainConfig {
	return ChainConfig{
		Retries:    2,
		Backoff:    500 * time.Millisecond,
		MaxBackoff: 10 * time.Second,
		Sleep:      sleep,
		Observer:   nopObserver{},
	}
}

func (c ChainConfig) withDefaults() ChainConfig {
	d := DefaultChainConfig()
	if c.Retries == 0 {
		c.Retries = d.Retries
	}
	if c.Backoff == 0 {
		c.Backoff = d.Backoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.Sleep == nil {
		c.Sleep = d.Sleep
	}
	if c.Observer == nil {
		c.Observer = d.Observer
	}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// New builds the model for a tenant's entries, the first one first and
// the others as its fallbacks. A mock entry is mock, so that one flag
// (--mock-token-delay) sets every mock's pace. A single mock entry is mock
// itself; anything else is a Chain.
func New(entries []Config, mock Model, cfg ChainConfig) (Model, error) {
	if len(entries) == 0 {
		return nil, errors.New("model: no entries")
	}
	if len(entries) == 1 && (entries[0].Provider == "" || entries[0].Provider == ProviderMock) {
		return mock, nil
	}
	chain := &Chain{cfg: cfg.withDefaults()}
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("model entry %d: %w", i, err)
		}
		e = e.withDefaults()
		link := link{name: e.Name, timeout: e.Timeout, model: mock}
		if e.Provider == ProviderOpenAI {
			o, err := NewOpenAI(e)
			if err != nil {
				return nil, fmt.Errorf("model entry %d: %w", i, err)
			}
			link.model = o
		} else {
			link.name = MockName
		}
		chain.links = append(chain.links, link)
	}
	return chain, nil
}
