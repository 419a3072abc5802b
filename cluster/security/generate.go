package security

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names in a certificates directory (`parley certs --out DIR`).
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	GossipKeyFile = "gossip.key"
)

// NodeFiles are the file names of node name's certificate and key in dir.
func NodeFiles(dir, name string) Files {
	return Files{
		CA:   filepath.Join(dir, CAFile),
		Cert: filepath.Join(dir, name+".pem"),
		Key:  filepath.Join(dir, name+"-key.pem"),
	}
}

// Validity periods of what Generate issues.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	nodeValidity = 2 * 365 * 24 * time.Hour
)

// GenerateOptions says what Generate writes.
type GenerateOptions struct {
	// Dir receives the files; created (0700) if missing.
	Dir string
	// Names are the node names to issue certificates for. Each certificate
	// has the DNS SANs name and localhost and the IP SAN 127.0.0.1.
	Names []string
	// Hosts are extra SANs put in every certificate: IPs become IP SANs,
	// anything else DNS SANs.
	Hosts []string
	// Now is the start of the validity of what is issued; zero means
	// time.Now(). Tests set it to make expired certificates.
	Now time.Time
	// NodeValidity is how long a node certificate is valid; zero means two
	// years.
	NodeValidity time.Duration
}

// Generated lists what Generate wrote and what it reused.
type Generated struct {
	Written []string // files created or replaced
	Reused  []string // CA and gossip key files that were already there
}

// Generate writes a cluster CA (ca.pem, ca-key.pem) unless Dir has one,
// then NAME.pem and NAME-key.pem for every name (replacing older ones), and
// gossip.key unless Dir has one. Keeping an existing CA and gossip key is
// what lets nodes be added to a running cluster later. Private keys and the
// gossip key are written 0600.
func Generate(opts GenerateOptions) (Generated, error) {
	var out Generated
	if opts.Dir == "" {
		return out, errors.New("certs: no output directory")
	}
	if len(opts.Names) == 0 {
		return out, errors.New("certs: no node names")
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	validity := opts.NodeValidity
	if validity == 0 {
		validity = nodeValidity
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return out, err
	}
	caCert, caKey, reused, err := loadOrCreateCA(opts.Dir, now)
	if err != nil {
		return out, err
	}
	if reused {
		out.Reused = append(out.Reused, filepath.Join(opts.Dir, CAFile))
	} else {
		out.Written = append(out.Written, filepath.Join(opts.Dir, CAFile), filepath.Join(opts.Dir, CAKeyFile))
	}
	for _, name := range opts.Names {
		files := NodeFiles(opts.Dir, name)
		if err := issueNode(files, name, opts.Hosts, caCert, caKey, now, validity); err != nil {
			return out, fmt.Errorf("certs: %s: %w", name, err)
		}
		out.Written = append(out.Written, files.Cert, files.Key)
	}
	gossipPath := filepath.Join(opts.Dir, GossipKeyFile)
	if _, err := LoadGossipKey(gossipPath); err == nil {
		out.Reused = append(out.Reused, gossipPath)
	} else if errors.Is(err, os.ErrNotExist) {
		key, err := NewGossipKey()
		if err != nil {
			return out, err
		}
		if err := writeFile(gossipPath, key, 0o600); err != nil {
			return out, err
		}
		out.Written = append(out.Written, gossipPath)
	} else {
		return out, err
	}
	return out, nil
}

func loadOrCreateCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, bool, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, false, fmt.Errorf("certs: existing CA %s: %w", certPath, err)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok || !pair.Leaf.IsCA {
			return nil, nil, false, fmt.Errorf("certs: existing %s is not a CA", certPath)
		}
		return pair.Leaf, signer, true, nil
	case certErr == nil || keyErr == nil:
		return nil, nil, false, fmt.Errorf("certs: %s has only one of %s and %s; give both or neither", dir, CAFile, CAKeyFile)
	case !errors.Is(certErr, os.ErrNotExist):
		return nil, nil, false, certErr
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Parley cluster CA", Organization: []string{"Parley"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, false, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, false, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, false, err
	}
	if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, false, err
	}
	return cert, key, false, nil
}

func issueNode(files Files, name string, hosts []string, ca *x509.Certificate, caKey crypto.Signer, now time.Time, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Parley"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// A member is both: it serves its planes and dials its peers'.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{name, "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writeKey(files.Key, key); err != nil {
		return err
	}
	return writeFile(files.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFile replaces path through a temporary file and a rename, so that a
// node reloading on SIGHUP never reads half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("security: no randomness: " + err.Error())
	}
	return n
}
