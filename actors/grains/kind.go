package grains

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// Validator is a grain kind's Config, its defaults already applied: Validate
// names the first field that is wrong.
type Validator interface {
	Validate() error
}

// Props validates cfg and returns props whose every activation is
// activate(cfg). Every kind's Props is this, for NewKind and for tests
// that spawn a grain outside a cluster (testkit.SpawnGrain). activate is
// called once per activation, on the actor system's goroutine; cfg is
// shared by all of them, so activations must not modify it.
func Props[C Validator](cfg C, activate func(C) actor.Actor) (*actor.Props, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return actor.PropsFromProducer(func() actor.Actor { return activate(cfg) }), nil
}

// NewKind returns the grain kind named kind, to register on every node,
// whose activations are activate(cfg); see Props.
func NewKind[C Validator](kind string, cfg C, activate func(C) actor.Actor) (*cluster.Kind, error) {
	props, err := Props(cfg, activate)
	if err != nil {
		return nil, err
	}
	return cluster.NewKind(kind, props), nil
}
