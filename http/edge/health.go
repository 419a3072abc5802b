package edge

import (
	"net/http"
)

// Health is what /healthz and /readyz report on.
type Health interface {
	// Ready returns nil when the node serves requests (joined the cluster,
	// storage open), else an error saying why not.
	Ready() error
	// Members returns the cluster members as this node sees them, for
	// operators; any JSON-encodable value.
	Members() any
}

// healthz answers 200 while the process is alive.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.cfg.NodeName})
}

// readyzResponse is the /readyz body when the node is ready.
type readyzResponse struct {
	Status  string   `json:"status"`
	Node    string   `json:"node"`
	Members any      `json:"members"`
	Voters  []string `json:"voters,omitempty"`
	TLS     *bool    `json:"tls,omitempty"`
}

// ClusterSecurity is implemented by a Health that knows whether its node's
// inter-node planes are secured: /readyz then says so in "tls".
type ClusterSecurity interface {
	// ClusterTLS reports whether gossip is encrypted and the remote and
	// raft ports run mutual TLS.
	ClusterTLS() bool
}

// Voters is implemented by a Health whose node runs a replicated store:
// /readyz then lists the store's voters.
type Voters interface {
	Voters() []string
}

// readyz answers 200 with the membership when the node serves requests,
// and 503 with the reason otherwise.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Health.Ready(); err != nil {
		(&requestError{status: http.StatusServiceUnavailable, code: CodeNotReady, message: err.Error(), retryAfter: retry}).write(w)
		return
	}
	body := readyzResponse{Status: "ready", Node: s.cfg.NodeName, Members: s.cfg.Health.Members()}
	if v, ok := s.cfg.Health.(Voters); ok {
		body.Voters = v.Voters()
	}
	if c, ok := s.cfg.Health.(ClusterSecurity); ok {
		secured := c.ClusterTLS()
		body.TLS = &secured
	}
	writeJSON(w, http.StatusOK, body)
}
