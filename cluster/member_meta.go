package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	protocluster "github.com/asynkron/protoactor-go/cluster"
)

// MemberMeta is what each node gossips about itself in memberlist's node
// metadata: everything Proto.Actor needs to make it a cluster member, plus
// the HTTP address for operators. memberlist caps metadata at 512 bytes;
// encode checks it.
type MemberMeta struct {
	// ID is the Proto.Actor member id: the actor system's id, new for every
	// process start. Proto.Actor never re-admits a member id that left, so a
	// restarted node must (and does) come back under a new one.
	ID string `json:"id"`
	// Remote is the host:port of the node's actor remote (gRPC).
	Remote string `json:"remote"`
	// Kinds are the grain kinds the node hosts.
	Kinds []string `json:"kinds"`
	// HTTP is the node's HTTP address, informational.
	HTTP string `json:"http,omitempty"`
	// Raft is the address of the node's replicated-store member, when it
	// runs one: the raft leader adds it as a voter.
	Raft string `json:"raft,omitempty"`
	// Leaving is set by a member about to leave gracefully, before it
	// hands its grains off: when it then disappears, peers know it left
	// rather than failed, and do not give up on calls it still answers.
	Leaving bool `json:"leaving,omitempty"`
}

const maxMetaSize = 512 // memberlist.MetaMaxSize

func (m MemberMeta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaSize {
		return nil, fmt.Errorf("member metadata is %d bytes, over memberlist's %d", len(b), maxMetaSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (MemberMeta, error) {
	var m MemberMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode member metadata: %w", err)
	}
	if m.ID == "" || m.Remote == "" {
		return m, fmt.Errorf("member metadata lacks id or remote address")
	}
	return m, nil
}

// member converts the metadata into Proto.Actor's member record.
func (m MemberMeta) member() (*protocluster.Member, error) {
	host, portText, err := net.SplitHostPort(m.Remote)
	if err != nil {
		return nil, fmt.Errorf("member %s remote address: %w", m.ID, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("member %s remote port: %w", m.ID, err)
	}
	return &protocluster.Member{
		Id:    m.ID,
		Host:  host,
		Port:  int32(port),
		Kinds: append([]string(nil), m.Kinds...),
	}, nil
}
