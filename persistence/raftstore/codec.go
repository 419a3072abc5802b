package raftstore

import "github.com/parley-chat/parley/internal/wire"

// Log entries, commands, queries and results are framed with
// internal/wire; encoder and decoder add this package's own fields
// (messages, keys: command.go).
type (
	encoder struct{ wire.Encoder }
	decoder struct{ wire.Decoder }
)

func newDecoder(b []byte) decoder { return decoder{wire.NewDecoder(b)} }
