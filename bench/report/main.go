// Command report holds the arithmetic of scripts/bench.sh, which is
// otherwise plain shell.
//
//	report stats             numbers on stdin (one per line) -> "n median min max mean cv"
//	report json PATH         JSON on stdin -> the number, string or boolean at
//	                         the dotted PATH (e.g. end.sum_received.bits_per_second;
//	                         a number indexes an array: ports.0.nodePort)
//	report table ROWS        print the results table; exit 1 if a floor is
//	                         missed or a benchmark could not be measured
//	report gobench FILE NAME UNIT
//	                         from `go test -bench` output in FILE, the values
//	                         of metric UNIT (ns/op, B/op, or a custom metric
//	                         such as podnet-ms) of benchmark NAME (the full
//	                         name, without the -GOMAXPROCS suffix), one per
//	                         line: one per -count run
//
// ROWS is a tab-separated file, one benchmark result per line:
//
//	ID  WHAT  CANDIDATE  ANCHOR  RATIO  WORST  DIR  TARGET  FLOOR  NOTE  [UNIT]
//
// DIR is "le" (the ratio must be at most TARGET/FLOOR) or "ge" (at least).
// RATIO is a number, or empty/"-"/"NaN" when the benchmark failed (verdict
// ERROR). TARGET and FLOOR are numbers or "-" (none); a row with neither
// gets the verdict "info" (context: reported, never judged). CANDIDATE,
// ANCHOR, WORST and NOTE are printed as given. UNIT, when given, says RATIO
// is not a ratio but an absolute value in that unit (a benchmark without an
// anchor): it is printed after the value and after TARGET and FLOOR.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	code := 0
	switch os.Args[1] {
	case "stats":
		err = stats(os.Stdin, os.Stdout)
	case "json":
		if len(os.Args) != 3 {
			usage()
		}
		err = jsonNumber(os.Stdin, os.Stdout, os.Args[2])
	case "table":
		if len(os.Args) != 3 {
			usage()
		}
		code, err = table(os.Args[2], os.Stdout)
	case "gobench":
		if len(os.Args) != 5 {
			usage()
		}
		err = gobench(os.Args[2], os.Args[3], os.Args[4], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: report stats | report json PATH | report table ROWS | report gobench FILE NAME UNIT")
	os.Exit(2)
}

// Summary of a sample.
type Summary struct {
	N                      int
	Median, Min, Max, Mean float64
	CV                     float64 // coefficient of variation: stddev/mean (sample stddev)
}

// Summarize returns the summary of xs (NaN fields when xs is empty).
func Summarize(xs []float64) Summary {
	s := Summary{N: len(xs)}
	if len(xs) == 0 {
		nan := math.NaN()
		return Summary{Median: nan, Min: nan, Max: nan, Mean: nan, CV: nan}
	}
	v := slices.Clone(xs)
	slices.Sort(v)
	s.Min, s.Max = v[0], v[len(v)-1]
	if len(v)%2 == 1 {
		s.Median = v[len(v)/2]
	} else {
		s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	s.Mean = sum / float64(len(v))
	if len(v) > 1 && s.Mean != 0 {
		var ss float64
		for _, x := range v {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.CV = math.Sqrt(ss/float64(len(v)-1)) / math.Abs(s.Mean)
	}
	return s
}

func stats(r io.Reader, w io.Writer) error {
	var xs []float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.TrimSpace(sc.Text())
		if f == "" {
			continue
		}
		x, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("stats: %q is not a number", f)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		xs = append(xs, x)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	s := Summarize(xs)
	_, err := fmt.Fprintf(w, "%d %.6g %.6g %.6g %.6g %.4f\n", s.N, s.Median, s.Min, s.Max, s.Mean, s.CV)
	return err
}

func jsonNumber(r io.Reader, w io.Writer, path string) error {
	var v any
	d := json.NewDecoder(r)
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	for _, k := range strings.Split(path, ".") {
		if a, ok := v.([]any); ok {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(a) {
				return fmt.Errorf("json: no element %q in the array of %d at %s", k, len(a), path)
			}
			v = a[i]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("json: no object at %q of %s", k, path)
		}
		if v, ok = m[k]; !ok {
			return fmt.Errorf("json: no %q in %s", k, path)
		}
	}
	switch x := v.(type) {
	case json.Number:
		_, err := fmt.Fprintln(w, x.String())
		return err
	case string:
		_, err := fmt.Fprintln(w, x)
		return err
	case bool:
		_, err := fmt.Fprintln(w, x)
		return err
	}
	return fmt.Errorf("json: %s is not a number, a string or a boolean", path)
}

// Row is one line of the results table.
type Row struct {
	ID, What, Candidate, Anchor string
	Ratio                       float64 // NaN: not measured
	Worst, Dir                  string
	Target, Floor               float64 // NaN: none
	Note                        string
	Unit                        string // "": Ratio is a ratio; else an absolute value in Unit
}

func parseNum(s string) float64 {
	s = strings.TrimSpace(s)
	if s == "" || s == "-" {
		return math.NaN()
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return x
}

// ParseRow parses one tab-separated line.
func ParseRow(line string) (Row, error) {
	f := strings.Split(line, "\t")
	if len(f) < 9 {
		return Row{}, fmt.Errorf("want at least 9 tab-separated fields, got %d: %q", len(f), line)
	}
	for len(f) < 11 {
		f = append(f, "")
	}
	r := Row{ID: f[0], What: f[1], Candidate: f[2], Anchor: f[3], Ratio: parseNum(f[4]), Worst: f[5],
		Dir: f[6], Target: parseNum(f[7]), Floor: parseNum(f[8]), Note: f[9], Unit: strings.TrimSpace(f[10])}
	if r.Dir != "le" && r.Dir != "ge" {
		return Row{}, fmt.Errorf("%s: direction %q: want le or ge", r.ID, r.Dir)
	}
	return r, nil
}

// Verdict is "ok", "below target", "BELOW FLOOR", "ERROR", or "info" for
// a row with neither target nor floor.
func (r Row) Verdict() string {
	if math.IsNaN(r.Ratio) {
		return "ERROR"
	}
	if math.IsNaN(r.Target) && math.IsNaN(r.Floor) {
		return "info"
	}
	meets := func(limit float64) bool {
		if math.IsNaN(limit) {
			return true
		}
		if r.Dir == "le" {
			return r.Ratio <= limit
		}
		return r.Ratio >= limit
	}
	switch {
	case !meets(r.Floor):
		return "BELOW FLOOR"
	case !meets(r.Target):
		return "below target"
	}
	return "ok"
}

func (r Row) limit(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	op := "≥"
	if r.Dir == "le" {
		op = "≤"
	}
	s := op + strconv.FormatFloat(x, 'g', -1, 64)
	if r.Unit != "" {
		s += " " + r.Unit
	}
	return s
}

func (r Row) value() string {
	if math.IsNaN(r.Ratio) {
		return "-"
	}
	s := strconv.FormatFloat(r.Ratio, 'f', 3, 64)
	if r.Unit != "" {
		s += " " + r.Unit
	}
	return s
}

func table(path string, w io.Writer) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 2, err
	}
	header := []string{"ID", "what", "candidate", "anchor", "ratio", "worst pair", "target", "floor", "verdict"}
	cells := [][]string{header}
	var notes []string
	failed := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := ParseRow(line)
		if err != nil {
			return 2, err
		}
		v := r.Verdict()
		if v == "BELOW FLOOR" || v == "ERROR" {
			failed++
		}
		cells = append(cells, []string{r.ID, r.What, r.Candidate, r.Anchor, r.value(), r.Worst,
			r.limit(r.Target), r.limit(r.Floor), v})
		if r.Note != "" {
			notes = append(notes, r.ID+": "+r.Note)
		}
	}
	widths := make([]int, len(header))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for i, row := range cells {
		var b strings.Builder
		for j, c := range row {
			if j > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			if j < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(c)))
			}
		}
		fmt.Fprintln(w, b.String())
		if i == 0 {
			total := len(widths)*2 - 2
			for _, x := range widths {
				total += x
			}
			fmt.Fprintln(w, strings.Repeat("-", total))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

// GoBenchValues returns, for every result line of benchmark name in the
// output of go test -bench, the value of metric unit. A result line is the
// name (with an optional -GOMAXPROCS suffix), the iteration count, then
// value-unit pairs.
func GoBenchValues(out, name, unit string) []float64 {
	var vals []float64
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		n := f[0]
		if i := strings.LastIndexByte(n, '-'); i > 0 {
			if _, err := strconv.Atoi(n[i+1:]); err == nil {
				n = n[:i]
			}
		}
		if n != name {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] == unit {
				if x, err := strconv.ParseFloat(f[i], 64); err == nil {
					vals = append(vals, x)
				}
			}
		}
	}
	return vals
}

func gobench(path, name, unit string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, x := range GoBenchValues(string(data), name, unit) {
		if _, err := fmt.Fprintln(w, strconv.FormatFloat(x, 'g', -1, 64)); err != nil {
			return err
		}
	}
	return nil
}
