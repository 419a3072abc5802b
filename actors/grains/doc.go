// Package grains is what every grain kind and its typed client share: the
// one interface a client calls grains through (Requester), the one Failure
// message a grain answers with when it cannot carry out a request, the
// sentinel errors clients turn those failures into, and the helper that
// turns a kind's Config into its cluster kind (NewKind, Props).
//
// It imports nothing of Parley's, so the cluster, every grain kind and
// the HTTP edge can all depend on it.
package grains
