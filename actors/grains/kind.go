package grains

import (
	"reflect"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// Validator is a grain kind's Config: Validate names the first field that
// is wrong.
type Validator interface {
	Validate() error
}

// Props fills cfg's zero fields from defaults (Defaults), validates it and
// returns props whose every activation is activate(cfg). Every kind's
// Props is this, for NewKind and for tests that spawn a grain outside a
// cluster (testkit.SpawnGrain). activate is called once per activation,
// on the actor system's goroutine; cfg is shared by all of them, so
// activations must not modify it.
func Props[C Validator](cfg, defaults C, activate func(C) actor.Actor) (*actor.Props, error) {
	cfg = Defaults(cfg, defaults)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return actor.PropsFromProducer(func() actor.Actor { return activate(cfg) }), nil
}

// NewKind returns the grain kind named kind, to register on every node,
// whose activations are activate(cfg); see Props.
func NewKind[C Validator](kind string, cfg, defaults C, activate func(C) actor.Actor) (*cluster.Kind, error) {
	props, err := Props(cfg, defaults, activate)
	if err != nil {
		return nil, err
	}
	return cluster.NewKind(kind, props), nil
}

// Defaults returns cfg with each zero field set to the same field of
// defaults: the rule every kind's Config follows, "zero means use the
// default", stated once. C must be a struct; its unexported fields are
// left alone. It panics when C is not a struct, a mistake at setup.
func Defaults[C any](cfg, defaults C) C {
	v := reflect.ValueOf(&cfg).Elem()
	if v.Kind() != reflect.Struct {
		panic("grains: Defaults of " + v.Type().String() + ", which is not a struct")
	}
	d := reflect.ValueOf(defaults)
	for i := range v.NumField() {
		if f := v.Field(i); f.CanSet() && f.IsZero() {
			f.Set(d.Field(i))
		}
	}
	return cfg
}
