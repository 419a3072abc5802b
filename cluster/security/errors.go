package security

import "errors"

// Sentinel errors. Each is wrapped with the file and the detail.
var (
	// ErrExpired: a certificate is outside its validity period.
	ErrExpired = errors.New("certificate expired or not yet valid")
	// ErrNameMismatch: a certificate does not name the node it belongs to.
	ErrNameMismatch = errors.New("certificate does not name the node")
	// ErrKeyMismatch: a private key is not the key of its certificate.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	// ErrNotSignedByCA: a certificate does not chain to the cluster CA.
	ErrNotSignedByCA = errors.New("certificate not signed by the cluster CA")
	// ErrBadGossipKey: a gossip key file does not hold a base64 AES key.
	ErrBadGossipKey = errors.New("gossip key must be 16, 24 or 32 bytes, base64")
)

// FileError is a problem with one of the credential files. Role is which
// file it is ("ca", "cert", "key" or "gossip-key"), so that a caller can
// name the flag that gave it.
type FileError struct {
	Role string
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }
