// Package security holds a node's cluster credentials: the mutual-TLS
// identity every inter-node TCP plane (Proto.Actor remote, the raft and
// forwarding port) presents and checks, the memberlist gossip keys, and the
// code that creates both (`parley certs`).
//
// Trust is one cluster CA: a peer is a member when its certificate chains
// to that CA, whatever address it dials from; where a peer's name matters
// (a raft voter must be the member its certificate names), the caller
// checks it with PeerNamed. docs/security.md states the trust model.
package security
