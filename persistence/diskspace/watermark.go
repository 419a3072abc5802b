package diskspace

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Watermark is how much of a filesystem must stay free: the smallest of
// its parts, each a number of bytes or a share of the filesystem's size.
// The zero Watermark (flag value "0") requires nothing.
type Watermark struct {
	parts []part
	text  string
}

type part struct {
	bytes   uint64
	percent float64 // when > 0, the part is a share of the total
}

// DefaultWatermark is the smaller of 5% of the filesystem and 2 GiB: a
// 5% reserve on small disks, 2 GiB on large ones where 5% would waste
// tens of gigabytes.
const DefaultWatermark = "5%,2GiB"

// units are the size suffixes ParseWatermark accepts.
var units = []struct {
	suffix string
	bytes  uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseWatermark reads a comma-separated list of sizes ("512MiB", "2GB",
// "1048576") and shares ("5%", "0.5%"); the watermark is the smallest of
// them. "0" requires no free space at all.
func ParseWatermark(s string) (Watermark, error) {
	w := Watermark{text: s}
	for _, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		p, err := parsePart(field)
		if err != nil {
			return Watermark{}, err
		}
		if p.bytes == 0 && p.percent == 0 {
			return Watermark{text: s}, nil
		}
		w.parts = append(w.parts, p)
	}
	return w, nil
}

func parsePart(s string) (part, error) {
	if rest, ok := strings.CutSuffix(s, "%"); ok {
		pct, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil || math.IsNaN(pct) || pct < 0 || pct >= 100 {
			return part{}, fmt.Errorf("%q is not a share from 0%% to under 100%%", s)
		}
		return part{percent: pct}, nil
	}
	mult := uint64(1)
	num := s
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			mult, num = u.bytes, strings.TrimSpace(rest)
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(n) || n < 0 || n*float64(mult) > math.MaxInt64 {
		return part{}, fmt.Errorf("%q is not a size such as 512MiB or a share such as 5%%", s)
	}
	return part{bytes: uint64(n * float64(mult))}, nil
}

// Required is how many of total bytes must stay free.
func (w Watermark) Required(total uint64) uint64 {
	if len(w.parts) == 0 {
		return 0
	}
	need := uint64(math.MaxUint64)
	for _, p := range w.parts {
		b := p.bytes
		if p.percent > 0 {
			b = uint64(float64(total) * p.percent / 100)
		}
		need = min(need, b)
	}
	return need
}

// String returns the watermark as it was written.
func (w Watermark) String() string { return w.text }
