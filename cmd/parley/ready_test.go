package main

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence/diskspace"
)

type fixedLeaderless time.Duration

func (f fixedLeaderless) LeaderlessFor() time.Duration { return time.Duration(f) }

func TestCanWriteNeedsALeaderAndDiskSpace(t *testing.T) {
	watermark, err := diskspace.ParseWatermark("1GiB")
	if err != nil {
		t.Fatal(err)
	}
	roomy := diskspace.NewGuard(diskspace.NewFixed(10<<30, 100<<30), watermark, nil)
	full := diskspace.NewGuard(diskspace.NewFixed(1<<20, 100<<30), watermark, nil)
	cases := []struct {
		name  string
		store leaderless
		disk  *diskspace.Guard
		want  string // "" for ready
	}{
		{"local store, room", nil, roomy, ""},
		{"leader known", fixedLeaderless(0), roomy, ""},
		{"an election", fixedLeaderless(2 * time.Second), roomy, ""},
		{"no quorum", fixedLeaderless(7 * time.Second), roomy, "no raft leader known for 7s"},
		{"disk below the watermark", fixedLeaderless(0), full, "free disk space below the watermark: 1.0 MiB free"},
		{"local store, disk full", nil, full, "--data-dir: free disk space below the watermark"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := canWrite(tc.store, tc.disk)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("not ready: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
