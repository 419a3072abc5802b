package ratelimit

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
)

// check answers a Check with a Decision: no storage I/O, a handful of
// integer operations; the counters reach storage later (flushBehind).
func (g *grain) check(ctx actor.Context, req *Check) {
	now := g.cfg.Clock.Now()
	g.idle.Touch()
	if !g.ready(ctx) {
		return
	}
	cost, err := checkRequest(req.Cost, req.Limits, req.Charge)
	if err != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: err.Error()})
		return
	}
	d := g.counters.check(now.UnixMicro(), cost, req.Limits, req.Charge)
	if d.Allowed || req.Charge {
		g.changed(ctx)
	}
	ctx.Respond(d)
}

// refund gives back units of a Check another scope refused.
func (g *grain) refund(ctx actor.Context, req *Refund) {
	now := g.cfg.Clock.Now()
	g.idle.Touch()
	if !g.ready(ctx) {
		return
	}
	cost, err := checkCost(req.Cost)
	if err != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: err.Error()})
		return
	}
	g.counters.refund(now.UnixMicro(), cost)
	g.changed(ctx)
	ctx.Respond(&Refunded{})
}
