package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Row is one line of the results table: a measurement beside the seed's
// target, when it has one.
type Row struct {
	Name        string `json:"name"`
	Nodes       int    `json:"nodes,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	// Count is the successful requests measured (or iterations of a
	// micro-benchmark, or sessions/streams for the memory rows).
	Count int64 `json:"count"`
	// Errors are failed or incomplete requests, by kind; they are never
	// part of the latencies.
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"errorKinds,omitempty"`
	Latency    *Latency         `json:"latency,omitempty"`
	// Throughput is successful requests per second.
	Throughput float64 `json:"throughputPerSec,omitempty"`
	Target     *Target `json:"target,omitempty"`
	// Result is PASS or FAIL for a row with a target; otherwise the
	// figure itself, or why there is none.
	Result string `json:"result"`
	// Values are the row's figures as numbers (bytes, ns/op, counts).
	Values map[string]float64 `json:"values,omitempty"`
	// Benchmark is the package and name of a micro-benchmark row.
	Benchmark string `json:"benchmark,omitempty"`
	// Floor is the same load's figures on the floor (floor.go), for a
	// limiter row; Values then hold Parley ÷ floor as floorRatio (req/s)
	// and floorP99Ratio (p99).
	Floor *Figures `json:"floor,omitempty"`

	section section // where the row goes in the table
}

// section orders the table: rows are measured in the order that suits the
// nodes' lifecycle, and shown grouped by what they measure.
type section int

const (
	secChat section = iota
	secRateLimit
	secHistory
	secMemory
	secStreams
	secMicro
)

// Figures are what one load measured on the floor.
type Figures struct {
	Count      int64    `json:"count"`
	Errors     int64    `json:"errors"`
	Latency    *Latency `json:"latency,omitempty"`
	Throughput float64  `json:"throughputPerSec,omitempty"`
}

// Latency is a row's percentiles in milliseconds, from an HDR histogram.
type Latency struct {
	P50Ms float64 `json:"p50Ms"`
	P95Ms float64 `json:"p95Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

// Target is a latency target of the seed, or one of an issue: a p99, or
// a throughput no lower than a share of the mock model's.
type Target struct {
	P50Ms float64 `json:"p50Ms,omitempty"`
	P95Ms float64 `json:"p95Ms,omitempty"`
	P99Ms float64 `json:"p99Ms,omitempty"`
	// MinMockRatio is the least share of the mock model's chats per second,
	// measured on the same nodes, that the row must reach; the row's
	// Values hold the ratio as mockRatio.
	MinMockRatio float64 `json:"minMockRatio,omitempty"`
	// MinFloorRatio is the least share of the floor's requests per second,
	// under the same load in the same run, that the row must reach; the
	// row's Values hold the ratio as floorRatio.
	MinFloorRatio float64 `json:"minFloorRatio,omitempty"`
}

// The seed's targets.
var (
	chatTarget      = &Target{P50Ms: 200, P95Ms: 500}
	rateLimitTarget = &Target{P95Ms: 50}
	historyTarget   = &Target{P95Ms: 100}
)

func (t *Target) String() string {
	if t == nil {
		return "—"
	}
	var parts []string
	if t.P50Ms > 0 {
		parts = append(parts, fmt.Sprintf("p50<%gms", t.P50Ms))
	}
	if t.P95Ms > 0 {
		parts = append(parts, fmt.Sprintf("p95<%gms", t.P95Ms))
	}
	if t.P99Ms > 0 {
		parts = append(parts, fmt.Sprintf("p99<%gms", t.P99Ms))
	}
	if t.MinMockRatio > 0 {
		parts = append(parts, fmt.Sprintf("≥%g× mock req/s", t.MinMockRatio))
	}
	if t.MinFloorRatio > 0 {
		parts = append(parts, fmt.Sprintf("≥%g× floor req/s", t.MinFloorRatio))
	}
	return strings.Join(parts, " ")
}

func latencyOf(h *hdrhistogram.Histogram) *Latency {
	if h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &Latency{
		P50Ms: ms(h.ValueAtQuantile(50)),
		P95Ms: ms(h.ValueAtQuantile(95)),
		P99Ms: ms(h.ValueAtQuantile(99)),
		MaxMs: ms(h.Max()),
	}
}

// latencyRow turns series s of a phase into a row and judges it against
// target: PASS needs samples, no errors and every percentile of the
// target under it.
func latencyRow(name string, nodes, conc int, res loadResult, s int, target *Target) Row {
	r := Row{
		Name: name, Nodes: nodes, Concurrency: conc,
		Count: res.ok, Latency: latencyOf(res.hists[s]), Throughput: res.throughput(), Target: target,
	}
	r.setErrors(res.errs)
	r.judge()
	return r
}

func (r *Row) setErrors(e errorCounts) {
	r.Errors = e.total()
	if r.Errors > 0 {
		r.ErrorKinds = e.snapshot()
	}
}

// judge sets Result from the target.
func (r *Row) judge() {
	if r.Target == nil {
		return
	}
	var why []string
	if r.Latency == nil {
		why = append(why, "no successful request")
	}
	if r.Errors > 0 {
		why = append(why, plural(r.Errors, "error"))
	}
	if l := r.Latency; l != nil {
		if r.Target.P50Ms > 0 && l.P50Ms >= r.Target.P50Ms {
			why = append(why, "p50 "+fmtMs(l.P50Ms))
		}
		if r.Target.P95Ms > 0 && l.P95Ms >= r.Target.P95Ms {
			why = append(why, "p95 "+fmtMs(l.P95Ms))
		}
		if r.Target.P99Ms > 0 && l.P99Ms >= r.Target.P99Ms {
			why = append(why, "p99 "+fmtMs(l.P99Ms))
		}
	}
	if r.Target.MinMockRatio > 0 {
		switch ratio, ok := r.Values["mockRatio"]; {
		case !ok:
			why = append(why, "no mock row to compare with")
		case ratio < r.Target.MinMockRatio:
			why = append(why, fmt.Sprintf("%.2f× mock req/s", ratio))
		}
	}
	if r.Target.MinFloorRatio > 0 {
		switch ratio, ok := r.Values["floorRatio"]; {
		case !ok:
			why = append(why, "no floor to compare with")
		case ratio < r.Target.MinFloorRatio:
			why = append(why, fmt.Sprintf("%.2f× floor req/s", ratio))
		}
	}
	if why == nil {
		r.Result = "PASS"
		return
	}
	r.Result = "FAIL (" + strings.Join(why, ", ") + ")"
}

// setValue sets one of the row's Values.
func (r *Row) setValue(name string, v float64) {
	if r.Values == nil {
		r.Values = map[string]float64{}
	}
	r.Values[name] = v
}

// compareWithFloor puts beside the row what the same load measured on the
// floor, judges the row again (a target may be a share of the floor's)
// and adds Parley ÷ floor to its result.
func (r *Row) compareWithFloor(f loadResult) {
	r.Floor = &Figures{Count: f.ok, Errors: f.errs.total(), Latency: latencyOf(f.hists[0]), Throughput: f.throughput()}
	if r.Floor.Throughput > 0 {
		r.setValue("floorRatio", r.Throughput/r.Floor.Throughput)
	}
	if r.Latency != nil && r.Floor.Latency != nil && r.Floor.Latency.P99Ms > 0 {
		r.setValue("floorP99Ratio", r.Latency.P99Ms/r.Floor.Latency.P99Ms)
	}
	r.judge()
	if ratio, ok := r.Values["floorRatio"]; ok {
		r.Result += fmt.Sprintf("; %.2f× the floor's req/s", ratio)
	}
	if r.Floor.Errors > 0 {
		r.Result += "; floor: " + plural(r.Floor.Errors, "error")
	}
}

// failed reports a row that missed its target.
func (r Row) failed() bool { return strings.HasPrefix(r.Result, "FAIL") }

// Report is everything one run measured; it is also the --json file.
type Report struct {
	Date            time.Time `json:"date"`
	Machine         Machine   `json:"machine"`
	Quick           bool      `json:"quick"`
	DurationSeconds float64   `json:"durationSeconds"`
	Verdict         string    `json:"verdict"`
	Rows            []Row     `json:"rows"`
	Skipped         []string  `json:"skipped,omitempty"`
	// Selection is the --only of a run of only some rows.
	Selection string `json:"selection,omitempty"`
}

// verdict says at a glance how the rows with a target fared.
func (rep Report) verdict() string {
	var pass, withTarget int
	var failed []string
	for _, r := range rep.Rows {
		if r.Target == nil {
			continue
		}
		withTarget++
		switch {
		case r.Result == "PASS" || strings.HasPrefix(r.Result, "PASS;"):
			pass++
		case r.failed():
			failed = append(failed, fmt.Sprintf("%s (nodes %d, concurrency %d)", r.Name, r.Nodes, r.Concurrency))
		}
	}
	v := fmt.Sprintf("%d of %d rows with a target pass", pass, withTarget)
	if failed != nil {
		v += "; failing: " + strings.Join(failed, ", ")
	}
	return v
}

// columns of the table, text and Markdown alike.
var columns = []string{"measurement", "nodes", "conc", "n", "errors", "p50", "p95", "p99", "req/s", "target", "result"}

func (r Row) cells() []string {
	dash := func(v int64) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprint(v)
	}
	c := []string{r.Name, dash(int64(r.Nodes)), dash(int64(r.Concurrency)), dash(r.Count), fmt.Sprint(r.Errors), "—", "—", "—", "—", r.Target.String(), r.Result}
	if r.Latency != nil {
		c[5], c[6], c[7] = fmtMs(r.Latency.P50Ms), fmtMs(r.Latency.P95Ms), fmtMs(r.Latency.P99Ms)
	}
	if r.Throughput > 0 {
		c[8] = fmt.Sprintf("%.0f", r.Throughput)
	}
	return c
}

// floorColumns are those of the table of the limiter rows beside the
// floor.
var floorColumns = []string{"measurement", "nodes", "conc", "Parley req/s", "floor req/s", "Parley ÷ floor", "Parley p50", "floor p50", "Parley p99", "floor p99", "p99 Parley ÷ floor", "node CPU per request"}

// floorCells are r's cells in the floor table; false for a row without a
// floor.
func (r Row) floorCells() ([]string, bool) {
	if r.Floor == nil {
		return nil, false
	}
	perSec := func(v float64) string {
		if v <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f", v)
	}
	pct := func(l *Latency, p func(*Latency) float64) string {
		if l == nil {
			return "—"
		}
		return fmtMs(p(l))
	}
	ratio := func(name string) string {
		if v, ok := r.Values[name]; ok {
			return fmt.Sprintf("%.2f×", v)
		}
		return "—"
	}
	cpu := "—"
	if v, ok := r.Values["nodeCPUMicrosPerRequest"]; ok {
		cpu = fmt.Sprintf("%.0f µs", v)
	}
	p50 := func(l *Latency) float64 { return l.P50Ms }
	p99 := func(l *Latency) float64 { return l.P99Ms }
	return []string{r.Name, fmt.Sprint(r.Nodes), fmt.Sprint(r.Concurrency),
		perSec(r.Throughput), perSec(r.Floor.Throughput), ratio("floorRatio"),
		pct(r.Latency, p50), pct(r.Floor.Latency, p50), pct(r.Latency, p99), pct(r.Floor.Latency, p99), ratio("floorP99Ratio"), cpu}, true
}

// floorTable is the cells of every row with a floor, nil when none has.
func (rep Report) floorTable() [][]string {
	var out [][]string
	for _, r := range rep.Rows {
		if cells, ok := r.floorCells(); ok {
			out = append(out, cells)
		}
	}
	return out
}

// writeText prints the table for a terminal, then each row's errors, then
// the limiter rows beside the floor.
func (rep Report) writeText(w io.Writer) {
	table := [][]string{columns}
	for _, r := range rep.Rows {
		table = append(table, r.cells())
	}
	// The last two columns (target, result) are text.
	writeAligned(w, table, func(i, n int) bool { return i == 0 || i >= n-2 })
	rep.writeErrors(w, "")
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	if rows := rep.floorTable(); rows != nil {
		fmt.Fprintln(w, "\nThe limiter rows beside the floor (the same load on an in-process server deciding with x/time/rate):")
		writeAligned(w, append([][]string{floorColumns}, rows...), func(i, _ int) bool { return i == 0 })
	}
	fmt.Fprintf(w, "\n%s.\n", rep.verdict())
}

// writeAligned prints table with its columns padded to one width each:
// left-aligned where left says so, right-aligned (numbers) elsewhere.
func writeAligned(w io.Writer, table [][]string, left func(i, n int) bool) {
	width := make([]int, len(table[0]))
	for _, cells := range table {
		for i, c := range cells {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, cells := range table {
		var line strings.Builder
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if left(i, len(cells)) {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
			line.WriteString("  ")
		}
		fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
	}
}

// writeErrors lists every row's errors by kind.
func (rep Report) writeErrors(w io.Writer, bullet string) {
	for _, r := range rep.Rows {
		if r.Errors == 0 {
			continue
		}
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k := range r.ErrorKinds {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%d× %s", r.ErrorKinds[k], k))
		}
		fmt.Fprintf(w, "%serrors in %q (nodes %d, concurrency %d): %s\n", bullet, r.Name, r.Nodes, r.Concurrency, strings.Join(parts, "; "))
	}
}

// markdown is the results section of docs/benchmarks.md.
func (rep Report) markdown() string {
	var b strings.Builder
	mode := "`make bench`"
	if rep.Quick {
		mode = "`parley-bench --quick`"
	}
	if rep.Selection != "" {
		mode = "`parley-bench --only " + rep.Selection + "`"
	}
	fmt.Fprintf(&b, "Measured %s by %s in %.0f s, on %s.\n\n", rep.Date.UTC().Format("2006-01-02 15:04 MST"), mode, rep.DurationSeconds, rep.Machine)
	fmt.Fprintf(&b, "**%s.**\n\n", rep.verdict())
	var rows [][]string
	for _, r := range rep.Rows {
		rows = append(rows, r.cells())
	}
	writeMarkdownTable(&b, columns, rows)
	if floorRows := rep.floorTable(); floorRows != nil {
		b.WriteString("\nThe limiter rows beside the floor, the same load on an in-process server deciding with `x/time/rate` (see \"The floor\" above):\n\n")
		writeMarkdownTable(&b, floorColumns, floorRows)
	}
	var errs strings.Builder
	rep.writeErrors(&errs, "- ")
	if errs.Len() > 0 {
		b.WriteString("\n" + errs.String())
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "\nSkipped: %s\n", s)
	}
	return b.String()
}

// writeMarkdownTable writes a Markdown table of header and rows.
func writeMarkdownTable(b *strings.Builder, header []string, rows [][]string) {
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, cells := range rows {
		escaped := make([]string, len(cells))
		for i, c := range cells {
			escaped[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(escaped, " | ") + " |\n")
	}
}

// Markers of the generated part of docs/benchmarks.md; the prose around
// them is kept.
const (
	docsBegin = "<!-- parley-bench: results begin (generated by make bench; edit the prose outside these markers) -->"
	docsEnd   = "<!-- parley-bench: results end -->"
)

// refreshDocs replaces the generated part of the file at path, or writes
// a new file around it.
func refreshDocs(path string, rep Report) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	out, err := spliceResults(string(old), rep.markdown())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// spliceResults puts results between the markers of doc; a doc without
// them gets a heading, the markers and the results.
func spliceResults(doc, results string) (string, error) {
	block := docsBegin + "\n\n" + results + "\n" + docsEnd
	i, j := strings.Index(doc, docsBegin), strings.Index(doc, docsEnd)
	switch {
	case i < 0 && j < 0:
		if doc == "" {
			doc = "# Benchmarks\n"
		}
		return strings.TrimRight(doc, "\n") + "\n\n" + block + "\n", nil
	case i < 0 || j < i:
		return "", fmt.Errorf("the results markers are incomplete or out of order")
	}
	return doc[:i] + block + doc[j+len(docsEnd):], nil
}

// writeJSON writes the report to path.
func writeJSON(path string, rep Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// fmtMs shows a latency with three significant digits.
func fmtMs(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

// fmtBytes shows a size in MiB or KiB.
func fmtBytes(b float64) string {
	switch {
	case b >= 1<<20 || b <= -(1<<20):
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10 || b <= -(1<<10):
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
