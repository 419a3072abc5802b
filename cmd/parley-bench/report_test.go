package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

func TestParseBenchReadsEveryMetric(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkAppend-2                 	    1000	   2134567 ns/op	    1234 B/op	      20 allocs/op
BenchmarkGrainDecisions/local/one-caller-2         	    1000	     45678 ns/op	     21893 decisions/s	     812 B/op	      14 allocs/op
--- BENCH: BenchmarkSessionMemory-2
PASS
`)
	got := parseBench(out)
	if len(got) != 2 {
		t.Fatalf("parsed %d results, want 2: %+v", len(got), got)
	}
	if got[0].name != "BenchmarkAppend" || got[0].iterations != 1000 || got[0].metrics["ns/op"] != 2134567 || got[0].metrics["allocs/op"] != 20 {
		t.Errorf("first = %+v", got[0])
	}
	if got[1].name != "BenchmarkGrainDecisions/local/one-caller" || got[1].metrics["decisions/s"] != 21893 || got[1].metrics["B/op"] != 812 {
		t.Errorf("second = %+v", got[1])
	}
}

func TestSpliceResultsKeepsTheProse(t *testing.T) {
	doc, err := spliceResults("# Benchmarks\n\nProse.\n", "old table\n")
	if err != nil {
		t.Fatal(err)
	}
	doc += "\nMore prose.\n"
	doc, err = spliceResults(doc, "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Prose.", "More prose.", "new table"} {
		if !strings.Contains(doc, want) {
			t.Errorf("doc lost %q:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "old table") || strings.Count(doc, docsBegin) != 1 {
		t.Errorf("results not replaced:\n%s", doc)
	}
	if _, err := spliceResults(docsEnd+docsBegin, "x"); err == nil {
		t.Error("markers out of order accepted")
	}
}

func TestJudgeNamesWhatMissed(t *testing.T) {
	r := Row{Target: chatTarget, Latency: &Latency{P50Ms: 250, P95Ms: 400}, Errors: 2}
	r.judge()
	if r.Result != "FAIL (2 errors, p50 250 ms)" {
		t.Errorf("Result = %q", r.Result)
	}
	r = Row{Target: historyTarget, Latency: &Latency{P50Ms: 5, P95Ms: 9}}
	r.judge()
	if r.Result != "PASS" {
		t.Errorf("Result = %q", r.Result)
	}
}

func TestCommentCounterCountsHeartbeatsAcrossWrites(t *testing.T) {
	c := &commentCounter{atLineStart: true}
	for _, chunk := range []string{": ping\n\nid: 0\nevent: token\ndata: {\"text\":\"a:b\"}\n\n", ":", " ping\n\n"} {
		_, _ = c.Write([]byte(chunk))
	}
	if c.n != 2 {
		t.Errorf("counted %d comments, want 2", c.n)
	}
}

func TestJudgeP99AndMockRatioTargets(t *testing.T) {
	cases := []struct {
		name   string
		target *Target
		p99    float64
		values map[string]float64
		want   string
	}{
		{"p99 under", &Target{P99Ms: 1}, 0.9, nil, "PASS"},
		{"p99 over", &Target{P99Ms: 1}, 1.5, nil, "FAIL (p99 1.50 ms)"},
		{"ratio reached", &Target{MinMockRatio: 0.8}, 5, map[string]float64{"mockRatio": 0.85}, "PASS"},
		{"ratio short", &Target{MinMockRatio: 0.8}, 5, map[string]float64{"mockRatio": 0.5}, "FAIL (0.50× mock req/s)"},
		{"no mock row", &Target{MinMockRatio: 0.8}, 5, nil, "FAIL (no mock row to compare with)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Row{Target: tc.target, Latency: &Latency{P50Ms: 0.1, P95Ms: 0.5, P99Ms: tc.p99}, Values: tc.values}
			r.judge()
			if r.Result != tc.want {
				t.Errorf("Result = %q, want %q", r.Result, tc.want)
			}
		})
	}
	if got := (&Target{MinMockRatio: 0.8}).String(); got != "≥0.8× mock req/s" {
		t.Errorf("ratio target shows as %q", got)
	}
	if got := (&Target{P99Ms: 1}).String(); got != "p99<1ms" {
		t.Errorf("p99 target shows as %q", got)
	}
}

func TestCompareWithFloorJudgesTheShareOfTheFloor(t *testing.T) {
	floorLoad := func(n int64, p99Ms float64) loadResult {
		h := newHistogram()
		for range n {
			_ = h.RecordValue(int64(p99Ms * 1000))
		}
		return loadResult{hists: []*hdrhistogram.Histogram{h}, ok: n, errs: newErrorCounts(), elapsed: time.Second}
	}
	cases := []struct {
		name       string
		throughput float64
		want       string
	}{
		{"enough", 800, "PASS; 0.80× the floor's req/s"},
		{"short", 500, "FAIL (0.50× floor req/s); 0.50× the floor's req/s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Row{Name: "refused", Nodes: 1, Concurrency: 32, Target: refusedManyTarget, Throughput: tc.throughput,
				Latency: &Latency{P50Ms: 1, P95Ms: 2, P99Ms: 4}}
			r.judge()
			if r.Result != "FAIL (no floor to compare with)" {
				t.Errorf("before the floor: Result = %q", r.Result)
			}
			r.compareWithFloor(floorLoad(1000, 2))
			if r.Result != tc.want {
				t.Errorf("Result = %q, want %q", r.Result, tc.want)
			}
			if got := r.Values["floorP99Ratio"]; got < 1.99 || got > 2.01 {
				t.Errorf("floorP99Ratio = %g, want 2", got)
			}
		})
	}
}

func TestFloorTableHoldsOnlyRowsWithAFloor(t *testing.T) {
	rep := Report{Rows: []Row{
		{Name: "chat", Nodes: 1, Concurrency: 1, Throughput: 100, Latency: &Latency{P50Ms: 1, P99Ms: 2}},
		{Name: "refused", Nodes: 1, Concurrency: 32, Throughput: 700, Latency: &Latency{P50Ms: 3, P99Ms: 9},
			Floor:  &Figures{Count: 1000, Throughput: 1000, Latency: &Latency{P50Ms: 1, P99Ms: 3}},
			Values: map[string]float64{"floorRatio": 0.7, "floorP99Ratio": 3, "nodeCPUMicrosPerRequest": 61.4}},
	}}
	rows := rep.floorTable()
	if len(rows) != 1 {
		t.Fatalf("floor table has %d rows, want 1: %v", len(rows), rows)
	}
	want := []string{"refused", "1", "32", "700", "1000", "0.70×", "3.00 ms", "1.00 ms", "9.00 ms", "3.00 ms", "3.00×", "61 µs"}
	if !slices.Equal(rows[0], want) {
		t.Errorf("row = %q, want %q", rows[0], want)
	}
	md := rep.markdown()
	if !strings.Contains(md, "| refused | 1 | 32 | 700 | 1000 | 0.70× |") || !strings.Contains(md, "| Parley req/s | floor req/s |") {
		t.Errorf("markdown lacks the floor table:\n%s", md)
	}
	if rep := (Report{Rows: rep.Rows[:1]}); strings.Contains(rep.markdown(), "floor") {
		t.Error("a report without a floor row shows a floor table")
	}
}

func TestStatCPUTimeAddsUserAndSystem(t *testing.T) {
	// pid, a name with a space and a parenthesis, state, then fields 4
	// to 13, then utime 250 and stime 120 ticks.
	stat := "4242 (parley (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 120 0 0 20 0 12 0\n"
	got, err := statCPUTime(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3700 * time.Millisecond; got != want {
		t.Errorf("statCPUTime = %s, want %s", got, want)
	}
	if _, err := statCPUTime("4242 (parley) S 1 2"); err == nil {
		t.Error("a short stat line was read")
	}
}
