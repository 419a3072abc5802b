package cluster

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/tracing"
)

// tracedRoot returns a root context whose messages carry ctx's span in
// their envelope headers (traceparent), so the grain that receives one,
// on this node or another, continues the caller's trace.
func tracedRoot(system *actor.ActorSystem, ctx context.Context) *actor.RootContext {
	header := tracing.Inject(ctx)
	return actor.NewRootContext(system, nil, func(next actor.SenderFunc) actor.SenderFunc {
		return func(c actor.SenderContext, target *actor.PID, envelope *actor.MessageEnvelope) {
			for k, v := range header {
				envelope.SetHeader(k, v)
			}
			next(c, target, envelope)
		}
	})
}

// messageName names a grain message in a span: its protobuf name
// ("Chat"), or its Go type for anything else.
func messageName(msg any) string {
	if m, ok := msg.(proto.Message); ok {
		return string(m.ProtoReflect().Descriptor().Name())
	}
	return fmt.Sprintf("%T", msg)
}
