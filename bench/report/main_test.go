package main

import (
	"math"
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
