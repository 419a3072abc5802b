package raftstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/raftstore"
	"github.com/parley-chat/parley/persistence/storetest"
)

// openSingle starts a bootstrapped one-voter store, as `make run` would.
func openSingle(t testing.TB) *raftstore.Store {
	t.Helper()
	cfg := raftstore.LocalConfig()
	cfg.NodeID = "solo"
	cfg.Dir = t.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Bootstrap = true
	cfg.Logger = testkit.NewLogger(t)
	s, err := raftstore.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformanceSingleNode(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persistence.Store { return openSingle(t) })
}

func TestConfigValidate(t *testing.T) {
	valid := raftstore.Config{NodeID: "a", Dir: "/tmp/x", BindAddr: "127.0.0.1:0"}
	cases := []struct {
		change func(*raftstore.Config)
		field  string // named in the error; "" when valid
	}{
		{func(*raftstore.Config) {}, ""},
		{func(c *raftstore.Config) { c.NodeID = "" }, "NodeID"},
		{func(c *raftstore.Config) { c.Dir = "" }, "Dir"},
		{func(c *raftstore.Config) { c.BindAddr = "" }, "BindAddr"},
		{func(c *raftstore.Config) { c.BindAddr = "nocolon" }, "BindAddr"},
		{func(c *raftstore.Config) { c.AdvertiseAddr = "0.0.0.0:7000" }, "AdvertiseAddr"},
		{func(c *raftstore.Config) { c.AdvertiseAddr = "10.0.0.1:7000" }, ""},
		{func(c *raftstore.Config) { c.ApplyTimeout = -time.Second }, "ApplyTimeout"},
		{func(c *raftstore.Config) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{func(c *raftstore.Config) { c.ElectionTimeout = 10 * time.Millisecond }, "ElectionTimeout"},
		{func(c *raftstore.Config) { c.LeaderLeaseTimeout = 2 * time.Second }, "LeaderLeaseTimeout"},
	}
	for _, tc := range cases {
		c := valid
		tc.change(&c)
		err := c.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), "Config."+tc.field)):
			t.Errorf("Validate(%+v) = %v, want an error naming %s", c, err, tc.field)
		}
	}
	if _, err := raftstore.Open(raftstore.Config{}); err == nil {
		t.Fatal("Open of an empty Config succeeded")
	}
}
