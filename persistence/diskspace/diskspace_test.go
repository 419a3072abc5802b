package diskspace

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseWatermark(t *testing.T) {
	const gib = 1 << 30
	cases := []struct {
		in    string
		total uint64
		want  uint64
	}{
		{"512MiB", 100 * gib, 512 << 20},
		{"5%", 10 * gib, gib / 2},
		{"0.5%", 100 * gib, gib / 2},
		{"2GB", gib, 2e9},
		{"1048576", gib, 1 << 20},
		{"1.5 GiB", 100 * gib, 3 * gib / 2},
		{DefaultWatermark, 10 * gib, gib / 2},   // 5% is smaller
		{DefaultWatermark, 1000 * gib, 2 * gib}, // 2 GiB is smaller
		{"0", 100 * gib, 0},
	}
	for _, tc := range cases {
		w, err := ParseWatermark(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := w.Required(tc.total); got != tc.want {
			t.Errorf("%q of %d: %d, want %d", tc.in, tc.total, got, tc.want)
		}
		if w.String() != tc.in {
			t.Errorf("%q prints as %q", tc.in, w.String())
		}
	}
	for _, bad := range []string{"", "lots", "-1MiB", "100%", "5%%", "1e30TiB", "5%,", "NaN%"} {
		if _, err := ParseWatermark(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestGuardRefusesBelowTheWatermarkOnly(t *testing.T) {
	w, _ := ParseWatermark("100MiB")
	disk := NewFixed(200<<20, 1<<30)
	var logs bytes.Buffer
	g := NewGuard(disk, w, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := g.Check(); err != nil {
		t.Fatalf("200 MiB free: %v", err)
	}
	disk.Set(99<<20, 1<<30, nil)
	_ = g.Check()
	err := g.Check()
	if !errors.Is(err, ErrLowDisk) || !strings.Contains(err.Error(), "99.0 MiB free of 1.0 GiB, at least 100.0 MiB") {
		t.Fatalf("99 MiB free: %v", err)
	}
	disk.Set(100<<20, 1<<30, nil)
	if err := g.Check(); err != nil {
		t.Fatalf("room back: %v", err)
	}
	_ = g.Check()
	if got := logs.String(); strings.Count(got, "refusing writes") != 1 || strings.Count(got, "taking writes") != 1 {
		t.Fatalf("want one line when writes stop and one when they resume, got:\n%s", got)
	}
	disk.Set(100<<20, 1<<30, errors.New("EIO"))
	if err := g.Check(); err == nil {
		t.Fatal("a disk that cannot be measured takes writes")
	}
}

// TestStatfsOnASmallFilesystem fills a 4 MiB tmpfs past a 1 MiB watermark
// and empties it again; it needs root (mount) and skips without it.
func TestStatfsOnASmallFilesystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })

	w, _ := ParseWatermark("1MiB")
	g := NewGuard(Statfs{Dir: dir}, w, nil)
	if err := g.Check(); err != nil {
		t.Fatalf("empty tmpfs: %v", err)
	}
	_, total, err := Statfs{Dir: dir}.Usage()
	if err != nil || total != 4<<20 {
		t.Fatalf("total %d, %v", total, err)
	}
	fill := filepath.Join(dir, "fill")
	if err := os.WriteFile(fill, make([]byte, 3<<20+512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); !errors.Is(err, ErrLowDisk) {
		t.Fatalf("3.5 MiB of 4 used: %v", err)
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Fatalf("emptied again: %v", err)
	}
}
