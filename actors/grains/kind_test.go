package grains_test

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/testkit"
)

type echoConfig struct{ Reply string }

func (c echoConfig) Validate() error {
	if c.Reply == "" {
		return errors.New("echo config: reply is empty")
	}
	return nil
}

type echo struct{ cfg echoConfig }

func (e *echo) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(string); ok {
		ctx.Respond(e.cfg.Reply)
	}
}

func activateEcho(cfg echoConfig) actor.Actor { return &echo{cfg: cfg} }

func TestAKindRefusesAnInvalidConfig(t *testing.T) {
	if _, err := grains.NewKind("Echo", echoConfig{}, echoConfig{}, activateEcho); err == nil || err.Error() != "echo config: reply is empty" {
		t.Fatalf("NewKind = %v, want Validate's error", err)
	}
	if _, err := grains.Props(echoConfig{}, echoConfig{}, activateEcho); err == nil {
		t.Fatal("Props accepted an invalid config")
	}
}

func TestAKindsActivationsAreMadeFromItsConfig(t *testing.T) {
	kind, err := grains.NewKind("Echo", echoConfig{}, echoConfig{Reply: "pong"}, activateEcho)
	if err != nil || kind.Kind != "Echo" {
		t.Fatalf("NewKind = %v, %v", kind, err)
	}
	props, err := grains.Props(echoConfig{Reply: "pong"}, echoConfig{Reply: "ignored: the config has its own"}, activateEcho)
	if err != nil {
		t.Fatal(err)
	}
	system := testkit.NewActorSystem(t)
	pid := system.Root.Spawn(props)
	defer system.Root.Stop(pid)
	res, err := system.Root.RequestFuture(pid, "ping", 5*time.Second).Result()
	if err != nil || res != "pong" {
		t.Fatalf("activation answered %v, %v; want pong", res, err)
	}
}

// Zero fields take the default, set ones keep their value, and a value
// Validate would refuse is kept for it to refuse.
func TestDefaultsFillOnlyZeroFields(t *testing.T) {
	type config struct {
		Timeout time.Duration
		Size    int
		Name    string
		Hook    func() string
		hidden  int
	}
	defaults := config{Timeout: time.Second, Size: 20, Name: "d", Hook: func() string { return "default" }, hidden: 7}
	got := grains.Defaults(config{Size: -1, Name: "mine"}, defaults)
	if got.Timeout != time.Second || got.Size != -1 || got.Name != "mine" || got.Hook == nil || got.Hook() != "default" || got.hidden != 0 {
		t.Fatalf("Defaults = %+v", got)
	}
}
