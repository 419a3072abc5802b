// Package testkit is Parley's kit for actor-level tests: what Akka's TestKit
// is to Akka, for Proto.Actor grains.
//
//   - Probe: an actor the test holds. Send or request from it, then expect a
//     message (or no message) within a timeout; watch a PID and expect its
//     termination.
//   - FakeClock: a clock.Clock the test moves by hand, so retention, TTLs,
//     passivation and sliding windows are tested without sleeping.
//   - Cluster: an in-process N-node Parley cluster on real memberlist gossip
//     and real Proto.Actor remoting over 127.0.0.1 free ports, with helpers
//     to stop a node gracefully, kill one abruptly, and wait until membership
//     converges.
//   - Eventually and NewLogger: polling assertions and a slog.Logger that
//     writes into the test's log.
//
// docs/testing.md walks through a complete test.
package testkit
