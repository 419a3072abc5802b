package diskspace

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// ErrLowDisk is returned by Guard.Check when the filesystem is below its
// watermark.
var ErrLowDisk = errors.New("free disk space below the watermark")

// Guard refuses writes below a watermark. Every Check asks its Source, so
// a disk that gets room back (a sweep, an operator) takes writes again at
// once; the only state kept is whether the last Check refused, so that the
// log has one line per change rather than one per refused write. Safe for
// concurrent use.
type Guard struct {
	source    Source
	watermark Watermark
	logger    *slog.Logger // nil: no logs
	low       atomic.Bool
}

// NewGuard returns a Guard of source against w. It logs to logger (when
// not nil) when writes start being refused and when they are taken again.
func NewGuard(source Source, w Watermark, logger *slog.Logger) *Guard {
	return &Guard{source: source, watermark: w, logger: logger}
}

// Check returns nil when writes may go on, else an error wrapping
// ErrLowDisk that says how much is free and how much must be. A Source
// that fails is reported as is: a node that cannot tell must not write.
func (g *Guard) Check() error {
	err := g.check()
	if low := err != nil; g.low.CompareAndSwap(!low, low) && g.logger != nil {
		if low {
			g.logger.Warn("free disk space below the watermark; refusing writes", "err", err)
		} else {
			g.logger.Info("free disk space above the watermark again; taking writes")
		}
	}
	return err
}

func (g *Guard) check() error {
	free, total, err := g.source.Usage()
	if err != nil {
		return fmt.Errorf("free disk space unknown: %w", err)
	}
	if need := g.watermark.Required(total); free < need {
		return fmt.Errorf("%w: %s free of %s, at least %s (watermark %s) must stay free",
			ErrLowDisk, size(free), size(total), size(need), g.watermark)
	}
	return nil
}

// size writes n bytes in binary units, one decimal.
func size(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
