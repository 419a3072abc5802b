package persistence

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/parley-chat/parley/internal/tracing"
)

// Traced returns s with a span around every call a request makes (a
// child of the span its ctx carries), named "store " and the method, with
// the tenant as an attribute. The periodic calls (Sweep, Usage) and the
// operator's (DeleteTenant) go to s untraced.
func Traced(s Store) Store { return traced{s} }

type traced struct{ Store }

func span(ctx context.Context, op, tenant string) (context.Context, trace.Span) {
	return tracing.Start(ctx, "store "+op, trace.WithAttributes(attribute.String("parley.tenant", tenant)))
}

func (t traced) Meta(ctx context.Context, key SessionKey) (_ SessionMeta, err error) {
	ctx, sp := span(ctx, "Meta", key.Tenant)
	defer func() { tracing.End(sp, err) }()
	return t.Store.Meta(ctx, key)
}

func (t traced) Append(ctx context.Context, key SessionKey, expectedLast uint64, msgs []Message, opts AppendOptions) (_ SessionMeta, err error) {
	ctx, sp := span(ctx, "Append", key.Tenant)
	defer func() { tracing.End(sp, err) }()
	return t.Store.Append(ctx, key, expectedLast, msgs, opts)
}

func (t traced) Page(ctx context.Context, key SessionKey, before uint64, limit int, notBefore time.Time) (_ []Message, err error) {
	ctx, sp := span(ctx, "Page", key.Tenant)
	defer func() { tracing.End(sp, err) }()
	return t.Store.Page(ctx, key, before, limit, notBefore)
}

func (t traced) DeleteSession(ctx context.Context, key SessionKey) (err error) {
	ctx, sp := span(ctx, "DeleteSession", key.Tenant)
	defer func() { tracing.End(sp, err) }()
	return t.Store.DeleteSession(ctx, key)
}

func (t traced) Get(ctx context.Context, key KVKey, now time.Time) (_ []byte, _ time.Time, _ bool, err error) {
	ctx, sp := span(ctx, "Get", key.Tenant)
	defer func() { tracing.End(sp, err) }()
	return t.Store.Get(ctx, key, now)
}

func (t traced) Put(ctx context.Context, key KVKey, value []byte, expiresAt time.Time, opts PutOptions) (err error) {
	ctx, sp := span(ctx, "Put", key.Tenant)
	defer func() { tracing.End(sp, err) }()
	return t.Store.Put(ctx, key, value, expiresAt, opts)
}

func (t traced) Delete(ctx context.Context, key KVKey) (err error) {
	ctx, sp := span(ctx, "Delete", key.Tenant)
	defer func() { tracing.End(sp, err) }()
	return t.Store.Delete(ctx, key)
}
