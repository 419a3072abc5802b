package cluster

import (
	"errors"
	"fmt"
	"net"

	"github.com/asynkron/protoactor-go/remote"
	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/parley-chat/parley/cluster/security"
)

// # Transport security
//
// With Config.TLS, the actor remote's gRPC server requires and verifies a
// client certificate of the cluster CA (TLS 1.3 only) and dials its peers
// with this node's certificate; a client without one never gets an HTTP/2
// frame, so never a grain message, answered. With Config.GossipKey,
// memberlist encrypts and authenticates every gossip packet and stream
// with its AES-GCM keyring and drops what does not decrypt
// (GossipVerifyIncoming/Outgoing): a process without the key cannot join,
// nor advertise itself, nor learn the members.

// remoteOptions are the remote's gRPC options for cfg: mutual TLS with
// cfg.TLS, or the remote's plaintext default without it.
func remoteOptions(cfg Config) []remote.ConfigOption {
	if cfg.TLS == nil {
		return nil
	}
	server := refusalLogger{TransportCredentials: credentials.NewTLS(cfg.TLS.ServerConfig()), id: cfg.TLS}
	return []remote.ConfigOption{
		remote.WithServerOptions(grpc.Creds(server)),
		remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(cfg.TLS.ClientConfig()))),
	}
}

// refusalLogger reports the peers whose handshake failed to the identity's
// rate-limited log; gRPC would drop the reason.
type refusalLogger struct {
	credentials.TransportCredentials
	id *security.Identity
}

func (r refusalLogger) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ServerHandshake(c)
	if err != nil {
		r.id.Refused("remote", c.RemoteAddr().String(), err)
	}
	return conn, info, err
}

func (r refusalLogger) Clone() credentials.TransportCredentials {
	return refusalLogger{TransportCredentials: r.TransportCredentials.Clone(), id: r.id}
}

// keyring is memberlist's keyring for cfg.GossipKey, nil without one.
func keyring(cfg Config) (*memberlist.Keyring, error) {
	if cfg.GossipKey == nil {
		return nil, nil
	}
	k, err := memberlist.NewKeyring(nil, cfg.GossipKey)
	if err != nil {
		return nil, fmt.Errorf("cluster config: GossipKey: %w", err)
	}
	return k, nil
}

// errNoGossipKey: the node gossips in the clear, so it has no keyring to
// rotate.
var errNoGossipKey = errors.New("gossip runs without a key (start the node with one)")

// UseGossipKey makes key the key this node encrypts gossip with, keeping
// the keys it had for decrypting: rotate by giving every node the new key
// (each then reads both), and only then remove the old one by restarting
// nodes with the new key alone. Giving the key in use again does nothing.
func (n *Node) UseGossipKey(key []byte) error {
	k := n.provider.keyring
	if k == nil {
		return errNoGossipKey
	}
	if err := k.AddKey(key); err != nil {
		return fmt.Errorf("gossip key: %w", err)
	}
	if err := k.UseKey(key); err != nil {
		return fmt.Errorf("gossip key: %w", err)
	}
	return nil
}

// GossipKeys is how many keys this node decrypts gossip with (0 without
// encryption).
func (n *Node) GossipKeys() int {
	if n.provider.keyring == nil {
		return 0
	}
	return len(n.provider.keyring.GetKeys())
}
