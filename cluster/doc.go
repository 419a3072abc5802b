// Package cluster makes a Parley process a member of a Proto.Actor cluster
// whose membership comes from hashicorp/memberlist.
//
// protoactor-go ships cluster providers for consul, etcd, Kubernetes and
// ZooKeeper, none for memberlist: MemberlistProvider is that provider. Each
// node gossips a small metadata record (MemberMeta) saying how to reach its
// actor remote and which grain kinds it hosts; every join, leave or failure
// memberlist reports becomes a new topology for Proto.Actor
// (MemberList.UpdateClusterTopology). Grains are placed with Proto.Actor's
// disthash identity lookup (rendezvous hashing over that topology), so every
// node that sees the same members agrees on each grain's owner.
//
// Node wraps the whole lifecycle: Start joins, Leave hands grains off and
// announces departure, Shutdown stops everything and is safe to call twice,
// and Kill stops abruptly, as a crashed process would, for tests.
package cluster
