package security

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Files names a node's three PEM files.
type Files struct {
	CA   string // the cluster CA certificate(s)
	Cert string // this node's certificate, issued by the CA
	Key  string // this node's private key
}

// Identity is a node's TLS identity: its certificate and key and the
// cluster CA it trusts. Reload swaps all three at once, atomically; every
// tls.Config it hands out reads the current ones at each handshake, so a
// reload takes effect on the next connection without a restart. It is safe
// for concurrent use.
type Identity struct {
	name  string
	files Files
	log   *slog.Logger
	now   func() time.Time
	cur   atomic.Pointer[material]

	refusedMu   sync.Mutex
	refusedLast map[string]time.Time // reason -> last logged
}

type material struct {
	cert tls.Certificate
	leaf *x509.Certificate
	pool *x509.CertPool
}

// refusalLogEvery is the least time between two log lines for peers
// refused for the same reason: a peer retrying with an expired
// certificate must not flood the log.
const refusalLogEvery = 30 * time.Second

// LoadIdentity reads files for the node name and checks them: the key
// matches the certificate, the certificate chains to the CA, is valid now
// and names the node (a DNS SAN equal to name). A *FileError says which
// file is at fault. logger receives the rate-limited lines about refused
// peers; nil discards them.
func LoadIdentity(name string, files Files, logger *slog.Logger) (*Identity, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	id := &Identity{name: name, files: files, log: logger, now: time.Now, refusedLast: map[string]time.Time{}}
	m, err := id.load()
	if err != nil {
		return nil, err
	}
	id.cur.Store(m)
	return id, nil
}

// Reload reads the files again and, when they pass the checks of
// LoadIdentity, uses them from the next handshake on. On error the
// identity in use is kept.
func (id *Identity) Reload() error {
	m, err := id.load()
	if err != nil {
		return err
	}
	id.cur.Store(m)
	return nil
}

// Name is the node name the certificate was checked to carry.
func (id *Identity) Name() string { return id.name }

// Certificate is the node certificate in use.
func (id *Identity) Certificate() *x509.Certificate { return id.cur.Load().leaf }

func (id *Identity) load() (*material, error) {
	caPEM, err := os.ReadFile(id.files.CA)
	if err != nil {
		return nil, &FileError{Role: "ca", Path: id.files.CA, Err: unwrapPath(err)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, &FileError{Role: "ca", Path: id.files.CA, Err: errors.New("no PEM certificate in it")}
	}
	certPEM, err := os.ReadFile(id.files.Cert)
	if err != nil {
		return nil, &FileError{Role: "cert", Path: id.files.Cert, Err: unwrapPath(err)}
	}
	keyPEM, err := os.ReadFile(id.files.Key)
	if err != nil {
		return nil, &FileError{Role: "key", Path: id.files.Key, Err: unwrapPath(err)}
	}
	if block, _ := pem.Decode(certPEM); block == nil || block.Type != "CERTIFICATE" {
		return nil, &FileError{Role: "cert", Path: id.files.Cert, Err: errors.New("no PEM certificate in it")}
	}
	if block, _ := pem.Decode(keyPEM); block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return nil, &FileError{Role: "key", Path: id.files.Key, Err: errors.New("no PEM private key in it")}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &FileError{Role: "key", Path: id.files.Key, Err: fmt.Errorf("%w (%v)", ErrKeyMismatch, err)}
	}
	leaf := cert.Leaf
	if err := checkLeaf(leaf, pool, id.now(), x509.ExtKeyUsageServerAuth); err != nil {
		return nil, &FileError{Role: "cert", Path: id.files.Cert, Err: err}
	}
	if err := names(leaf, id.name); err != nil {
		return nil, &FileError{Role: "cert", Path: id.files.Cert, Err: err}
	}
	return &material{cert: cert, leaf: leaf, pool: pool}, nil
}

// unwrapPath drops the path os errors repeat.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkLeaf verifies that leaf is valid at now and chains to pool, for
// the given use.
func checkLeaf(leaf *x509.Certificate, pool *x509.CertPool, now time.Time, usage x509.ExtKeyUsage) error {
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("%w: valid %s to %s", ErrExpired, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotSignedByCA, err)
	}
	return nil
}

// names reports whether cert names the node name (a DNS SAN).
func names(cert *x509.Certificate, name string) error {
	if slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
		return nil
	}
	return fmt.Errorf("%w %q (it names %s)", ErrNameMismatch, name, strings.Join(cert.DNSNames, ", "))
}

// PeerNamed reports whether the peer of a TLS connection presented a
// certificate that names the node name. The chain was verified by the
// handshake; this checks the identity.
func PeerNamed(state tls.ConnectionState, name string) error {
	if len(state.PeerCertificates) == 0 {
		return errors.New("peer presented no certificate")
	}
	return names(state.PeerCertificates[0], name)
}

// ServerConfig is the configuration of a listener of the cluster: TLS 1.3
// only, and a client certificate signed by the cluster CA required and
// verified (RequireAndVerifyClientCert). nextProtos are its ALPN protocols
// ("h2" for gRPC). Certificate and CA are read at each handshake.
func (id *Identity) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := id.cur.Load()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{m.cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    m.pool,
				NextProtos:   nextProtos,
			}, nil
		},
	}
}

// ClientConfig is the configuration of a connection to another member:
// TLS 1.3 only, this node's certificate presented, and the server's
// certificate verified against the cluster CA in use. Members are dialled
// by address, and an address is not what a member certificate vouches
// for: the chain is checked, not the host name (PeerNamed checks a name
// where one matters).
func (id *Identity) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			m := id.cur.Load()
			return &m.cert, nil
		},
		// The standard verification needs a fixed RootCAs and a host name;
		// VerifyConnection does the chain check against the current CA.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			m := id.cur.Load()
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			leaf := cs.PeerCertificates[0]
			_, err := leaf.Verify(x509.VerifyOptions{Roots: m.pool, Intermediates: inter, CurrentTime: id.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if err != nil {
				return fmt.Errorf("server certificate: %w: %v", ErrNotSignedByCA, err)
			}
			return nil
		},
	}
}

// Refused logs that a peer was refused on plane (its handshake failed), at
// most once per refusalLogEvery for the same plane and reason, so that a
// peer retrying with a bad or expired certificate cannot flood the log.
func (id *Identity) Refused(plane, remote string, err error) {
	reason := err.Error()
	key := plane + "\x00" + refusalKind(err)
	now := id.now()
	id.refusedMu.Lock()
	last, seen := id.refusedLast[key]
	if seen && now.Sub(last) < refusalLogEvery {
		id.refusedMu.Unlock()
		return
	}
	if len(id.refusedLast) > 1000 {
		clear(id.refusedLast) // bound the memory peers' varied errors can take
	}
	id.refusedLast[key] = now
	id.refusedMu.Unlock()
	id.log.Warn("peer refused: TLS handshake failed", "plane", plane, "remote", remote, "err", reason)
}

// refusalKind is what makes two refusals "the same reason" for the log's
// rate limit: the kind of certificate error, not its text, which carries
// the current time for an expired certificate.
func refusalKind(err error) string {
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		return fmt.Sprintf("invalid certificate (%d)", invalid.Reason)
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return "unknown authority"
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return "alert " + alert.Error()
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1 // addresses, ports and times differ between tries
		}
		return r
	}, err.Error())
}
