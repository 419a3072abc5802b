package ratelimit

import (
	"context"
	"fmt"
	"math"
)

// Charge counts cost units already used against one scope, whatever its
// limits say (a reply's tokens, known only once it ended): later Checks of
// that scope are refused until the window has room again. It asks once,
// within the Limiter's Timeout (or ctx's deadline, if sooner), and is not
// retried: a charge that fails is lost, erring towards serving. A cost
// over MaxInt32 is charged as MaxInt32; 0 or less charges nothing.
func (l *Limiter) Charge(ctx context.Context, tenant string, c ScopeCheck) error {
	if c.Cost <= 0 {
		return nil
	}
	id, err := Identity(tenant, c.Scope, c.ID)
	if err != nil {
		return err
	}
	if err := checkLimits(c.limits()); err != nil {
		return fmt.Errorf("%s scope: %w", c.Scope, err)
	}
	a := l.fanOut(ctx, []string{id}, func(int) any {
		return &Check{Cost: int32(min(int64(c.Cost), math.MaxInt32)), Limits: c.limits(), Charge: true}
	})[0]
	switch {
	case a.invalid != nil:
		return fmt.Errorf("%s scope: %w", c.Scope, a.invalid)
	case a.err != nil:
		return fmt.Errorf("charge %s scope: %w", c.Scope, a.err)
	}
	return nil
}
