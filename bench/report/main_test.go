package main

import (
	"io"
	"math"
	"os"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{3, 1, 2, 4})
	if s.N != 4 || s.Median != 2.5 || s.Min != 1 || s.Max != 4 || s.Mean != 2.5 {
		t.Fatalf("got %+v", s)
	}
	if math.Abs(s.CV-0.5164) > 1e-3 {
		t.Fatalf("cv %v", s.CV)
	}
	if s := Summarize([]float64{5}); s.Median != 5 || s.CV != 0 {
		t.Fatalf("got %+v", s)
	}
	if s := Summarize(nil); !math.IsNaN(s.Median) {
		t.Fatalf("got %+v", s)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		line, want string
	}{
		{"B1\tx\t1\t1\t1.03\t1.1\tle\t1.05\t1.20", "ok"},
		{"B1\tx\t1\t1\t1.10\t1.1\tle\t1.05\t1.20", "below target"},
		{"B1\tx\t1\t1\t1.21\t1.3\tle\t1.05\t1.20", "BELOW FLOOR"},
		{"B10\tx\t1\t1\t0.96\t0.9\tge\t0.95\t0.85", "ok"},
		{"B10\tx\t1\t1\t0.90\t0.9\tge\t0.95\t0.85", "below target"},
		{"B10\tx\t1\t1\t0.80\t0.7\tge\t0.95\t0.85", "BELOW FLOOR"},
		{"B2c\tx\t1\t1\t0.50\t0.4\tge\t0.85\t-", "below target"},
		{"B12c\tx\t1\t1\t0\t-\tle\t0\t0", "ok"},
		{"B12c\tx\t1\t1\t3\t-\tle\t0\t0", "BELOW FLOOR"},
		{"B2\tx\t-\t-\t\t-\tle\t1.0\t1.15\tfailed", "ERROR"},
		{"B9d\tx\t1\t1\t0.9\t0.8\tge\t-\t-", "info"},
		{"SCALE\tx\t1\t-\t26.1\t-\tle\t-\t-\tabsolute\tms", "info"},
		{"SCALE\tx\t1\t-\t\t-\tle\t-\t-\tfailed\tms", "ERROR"},
		{"REACH\tx\t1\t-\t0.8\t-\tle\t1\t-\t\ts", "ok"},
		{"REACH\tx\t1\t-\t2.01\t-\tle\t1\t-\t\ts", "below target"},
	} {
		r, err := ParseRow(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Verdict(); got != tc.want {
			t.Errorf("%q: verdict %q, want %q", tc.line, got, tc.want)
		}
	}
	if _, err := ParseRow(strings.Repeat("x\t", 8) + "x"); err == nil {
		t.Error("bad direction accepted")
	}
}

func TestTableUnits(t *testing.T) {
	dir := t.TempDir()
	rows := "REACH\tdocker run -> reply\tmedian 812 ms\tnone (absolute)\t0.812\tp99 1.2 s\tle\t1\t-\tnote\ts\n" +
		"B9\tthroughput\t5 Gbit/s\t6 Gbit/s\t0.833\t0.7\tge\t0.95\t-\n"
	path := dir + "/rows.tsv"
	if err := os.WriteFile(path, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	code, err := table(path, &b)
	if err != nil || code != 0 {
		t.Fatalf("code %d err %v", code, err)
	}
	out := b.String()
	for _, want := range []string{"0.812 s", "≤1 s", "0.833 ", "≥0.95 ", "below target"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestGoBenchValues(t *testing.T) {
	out := `goos: linux
BenchmarkScale/hosts=1000/scratch-2         	       3	       213.6 iproute2-ms	       174.9 podnet-ms	         0.8191 ratio
BenchmarkScale/hosts=1000/event-block-2     	   18237	     66098 ns/op	         1.000 kernel-ops/event	     33049 ns/event	    5416 B/op
BenchmarkScale/hosts=10000/event-block-2    	   18237	     99999 ns/op
BenchmarkScale/hosts=1000/event-block-2     	   18000	     70000 ns/op	         1.000 kernel-ops/event	     35000 ns/event	    5416 B/op
BenchmarkScale/hosts=1000/event-block
PASS`
	if got := GoBenchValues(out, "BenchmarkScale/hosts=1000/event-block", "ns/event"); len(got) != 2 || got[0] != 33049 || got[1] != 35000 {
		t.Fatalf("ns/event: %v", got)
	}
	if got := GoBenchValues(out, "BenchmarkScale/hosts=1000/scratch", "ratio"); len(got) != 1 || got[0] != 0.8191 {
		t.Fatalf("ratio: %v", got)
	}
	if got := GoBenchValues(out, "BenchmarkScale/hosts=1000/scratch", "ns/op"); len(got) != 0 {
		t.Fatalf("a metric the line lacks: %v", got)
	}
}

func TestJSONPath(t *testing.T) {
	in := `{"synced": true, "ports": [{"port": 80, "nodePort": 30080}], "end": {"bps": 1.5e9}, "name": "web"}`
	for path, want := range map[string]string{"synced": "true\n", "ports.0.nodePort": "30080\n", "end.bps": "1.5e9\n", "name": "web\n"} {
		var b strings.Builder
		if err := jsonNumber(strings.NewReader(in), &b, path); err != nil || b.String() != want {
			t.Errorf("%s: %q %v, want %q", path, b.String(), err, want)
		}
	}
	for _, path := range []string{"ports.1.port", "ports.x", "end", "missing"} {
		if err := jsonNumber(strings.NewReader(in), io.Discard, path); err == nil {
			t.Errorf("%s: no error", path)
		}
	}
}
