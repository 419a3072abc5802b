package security

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// gossipKeySize is the AES-256 key `parley certs` writes; memberlist also
// takes 16 and 24 bytes.
const gossipKeySize = 32

// LoadGossipKey reads a gossip key file: one base64 line holding a 16, 24
// or 32 byte key. A *FileError with role "gossip-key" says what is wrong.
func LoadGossipKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Role: "gossip-key", Path: path, Err: unwrapPath(err)}
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, &FileError{Role: "gossip-key", Path: path, Err: fmt.Errorf("%w: %v", ErrBadGossipKey, err)}
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, &FileError{Role: "gossip-key", Path: path, Err: fmt.Errorf("%w: it holds %d bytes", ErrBadGossipKey, len(key))}
}

// NewGossipKey returns a new random AES-256 gossip key, base64 encoded
// with a trailing newline: the content of a gossip key file.
func NewGossipKey() ([]byte, error) {
	key := make([]byte, gossipKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n"), nil
}
