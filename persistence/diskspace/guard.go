package diskspace

import (
	"errors"
	"fmt"
)

// ErrLowDisk is returned by Guard.Check when the filesystem is below its
// watermark.
var ErrLowDisk = errors.New("free disk space below the watermark")

// Guard refuses writes below a watermark. It keeps no state: every Check
// asks its Source, so a disk that gets room back (a sweep, an operator)
// takes writes again at once. Safe for concurrent use.
type Guard struct {
	source    Source
	watermark Watermark
}

// NewGuard returns a Guard of source against w.
func NewGuard(source Source, w Watermark) *Guard {
	return &Guard{source: source, watermark: w}
}

// Check returns nil when writes may go on, else an error wrapping
// ErrLowDisk that says how much is free and how much must be. A Source
// that fails is reported as is: a node that cannot tell must not write.
func (g *Guard) Check() error {
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
