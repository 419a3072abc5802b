package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/cluster/security"
)

// securityConfig is what `parley serve` is told about the cluster's
// credentials (docs/security.md).
type securityConfig struct {
	TLSCA           string
	TLSCert         string
	TLSKey          string
	GossipKeyFile   string
	InsecureCluster bool
}

func (c *securityConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.TLSCA, "tls-ca", "", "PEM file of the cluster CA: peers on the remote and raft ports must present a certificate it signed")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM file of this node's certificate (signed by --tls-ca, naming --node-name); reloaded on SIGHUP")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM file of this node's private key; reloaded on SIGHUP")
	fs.StringVar(&c.GossipKeyFile, "gossip-key-file", "", "file holding the base64 gossip encryption key shared by every node; reloaded on SIGHUP")
	fs.BoolVar(&c.InsecureCluster, "insecure-cluster", false, "allow non-loopback gossip, remote or raft addresses without TLS and a gossip key (anyone who reaches them can read and change every tenant's data)")
}

// flags returns the four credential flags, named, with their values.
func (c securityConfig) flags() []struct{ name, value string } {
	return []struct{ name, value string }{
		{"tls-ca", c.TLSCA}, {"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"gossip-key-file", c.GossipKeyFile},
	}
}

// enabled reports whether all four credential files were given.
func (c securityConfig) enabled() bool {
	for _, f := range c.flags() {
		if f.value == "" {
			return false
		}
	}
	return true
}

// checkSecurity is secure by default: a node any of whose cluster planes
// is reachable from off the machine needs all four credentials, unless
// --insecure-cluster says otherwise. Some but not all of them is always
// an error: half a configuration is a mistake, not a choice.
func (c serveConfig) checkSecurity() error {
	var missing, given []string
	for _, f := range c.Security.flags() {
		if f.value == "" {
			missing = append(missing, "--"+f.name)
		} else {
			given = append(given, "--"+f.name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if len(given) > 0 {
		return usageError{fmt.Errorf("%s given without %s: the cluster's credentials go together", strings.Join(given, ", "), strings.Join(missing, ", "))}
	}
	if c.Security.InsecureCluster {
		return nil
	}
	planes := []struct{ name, addr string }{{"gossip-addr", c.GossipAddr}, {"remote-addr", c.RemoteAddr}}
	if c.Store == storeReplicated {
		planes = append(planes, struct{ name, addr string }{"raft-addr", c.RaftAddr})
	}
	var exposed []string
	for _, p := range planes {
		if !isLoopback(p.addr) {
			exposed = append(exposed, fmt.Sprintf("--%s %s", p.name, p.addr))
		}
	}
	if len(exposed) == 0 {
		return nil
	}
	return usageError{fmt.Errorf("%s not loopback: give %s (parley certs makes them), or --insecure-cluster", strings.Join(exposed, ", "), strings.Join(missing, ", "))}
}

// isLoopback reports whether a host:port binds only the loopback
// interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// nodeSecurity is a node's loaded credentials; nil when the cluster runs
// in the clear.
type nodeSecurity struct {
	cfg       securityConfig
	identity  *security.Identity
	gossipKey []byte // the key in use, to tell a changed file from the same
}

// loadSecurity reads the credential files, or warns that the cluster runs
// in the clear. A bad file is a usageError naming its flag and the reason.
func loadSecurity(cfg serveConfig, logger *slog.Logger) (*nodeSecurity, error) {
	if !cfg.Security.enabled() {
		if cfg.Security.InsecureCluster {
			logger.Warn("cluster planes run without TLS or gossip encryption (--insecure-cluster): whoever reaches the gossip, remote or raft port can read and change every tenant's data")
		}
		return nil, nil
	}
	id, err := security.LoadIdentity(cfg.NodeName, security.Files{CA: cfg.Security.TLSCA, Cert: cfg.Security.TLSCert, Key: cfg.Security.TLSKey},
		logger.With("component", "security"))
	if err != nil {
		return nil, credentialError(err)
	}
	key, err := security.LoadGossipKey(cfg.Security.GossipKeyFile)
	if err != nil {
		return nil, credentialError(err)
	}
	return &nodeSecurity{cfg: cfg.Security, identity: id, gossipKey: key}, nil
}

// credentialError names the flag of the file a *security.FileError is
// about.
func credentialError(err error) error {
	var fe *security.FileError
	if !errors.As(err, &fe) {
		return usageError{err}
	}
	flagName := map[string]string{"ca": "tls-ca", "cert": "tls-cert", "key": "tls-key", "gossip-key": "gossip-key-file"}[fe.Role]
	return usageError{fmt.Errorf("--%s %s", flagName, err)}
}

// apply gives the cluster member its credentials.
func (s *nodeSecurity) apply(c *cluster.Config) {
	if s == nil {
		return
	}
	c.TLS = s.identity
	c.GossipKey = s.gossipKey
}

// reload reads the certificate, key, CA and gossip key again (SIGHUP).
// What fails to load is logged and the credentials in use are kept; a new
// gossip key becomes the one this node sends with, and the old ones stay
// readable until the next start.
func (s *nodeSecurity) reload(member *cluster.Node, logger *slog.Logger) {
	if s == nil {
		return
	}
	if err := s.identity.Reload(); err != nil {
		logger.Error("certificates not reloaded; the old ones stay in use", "err", credentialError(err).Error())
	} else {
		c := s.identity.Certificate()
		logger.Info("certificates reloaded", "serial", c.SerialNumber.Text(16), "notAfter", c.NotAfter)
	}
	key, err := security.LoadGossipKey(s.cfg.GossipKeyFile)
	if err != nil {
		logger.Error("gossip key not reloaded; the old one stays in use", "err", credentialError(err).Error())
		return
	}
	if bytes.Equal(key, s.gossipKey) {
		return
	}
	if err := member.UseGossipKey(key); err != nil {
		logger.Error("gossip key not reloaded; the old one stays in use", "err", err)
		return
	}
	s.gossipKey = key
	logger.Info("gossip key rotated: sending with the new key, still reading the old ones", "keys", member.GossipKeys())
}
