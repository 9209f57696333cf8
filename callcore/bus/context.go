package bus

import (
	"context"

	"github.com/callbus/callbus/callcore/events"
)

type causeKey struct{}

// causeCtx carries the id of the event being handled, so that whatever the
// handler publishes names it as its cause. Publish recognises it without a
// Value walk.
type causeCtx struct {
	context.Context
	id events.ID
}

func (c *causeCtx) Value(key any) any {
	if key == (causeKey{}) {
		return c.id
	}
	return c.Context.Value(key)
}

// WithCause returns a ctx whose publishes name id as their cause. Handlers
// get such a ctx already; use this to publish later from another goroutine.
func WithCause(ctx context.Context, id events.ID) context.Context {
	return &causeCtx{Context: ctx, id: id}
}

// CauseFrom returns the cause carried by ctx, or the zero ID.
func CauseFrom(ctx context.Context) events.ID {
	if c, ok := ctx.(*causeCtx); ok {
		return c.id
	}
	if id, ok := ctx.Value(causeKey{}).(events.ID); ok {
		return id
	}
	return events.ID{}
}
