package main

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "200")
	debug.SetGCPercent(100)
	tuneGC(quiet)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set in the environment: GC percent %d, want it left alone (100)", got)
	}
	// t.Setenv cannot unset: clear it by hand; the Setenv above restores
	// the original value when the test ends.
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	tuneGC(quiet)
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, gcPercent)
	}
}
