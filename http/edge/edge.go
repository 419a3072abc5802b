package edge

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Config is what the edge needs from the node it runs on.
type Config struct {
	// NodeName names this node in health responses.
	NodeName string
	// Health answers /readyz.
	Health Health
	// Logger receives the edge's logs.
	Logger *slog.Logger
}

// Validate names the first missing field.
func (c Config) Validate() error {
	switch {
	case c.Health == nil:
		return errors.New("edge config: Health is nil")
	case c.Logger == nil:
		return errors.New("edge config: Logger is nil")
	}
	return nil
}

type server struct {
	cfg Config
}

// New returns the edge's HTTP handler.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg}
	r := chi.NewRouter()
	r.Use(withRecover(cfg.Logger), withTraceID)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	})
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	return r, nil
}
