package testutil

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Polling. Tests never sleep and hope: they poll a condition under a
// deadline, and a failure says what was awaited, for how long, and what the
// condition saw last. This is the one polling loop of the test suites; the
// e2e package's WaitFor is this loop too.

const (
	pollFirst = 5 * time.Millisecond
	// pollMax caps the backoff: conditions that run a command (docker,
	// ip) are polled at most every half second, cheap ones start fast.
	pollMax = 500 * time.Millisecond
)

// Poll calls cond until it returns nil and reports how long that took. When
// timeout passes first it returns an error naming what was awaited, the
// timeout and cond's last error. cond runs at least once, and once more at
// the deadline, so a slow machine never fails a condition it never checked.
func Poll(timeout time.Duration, what string, cond func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	delay := pollFirst
	tries := 0
	for {
		tries++
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		now := time.Now()
		if !now.Before(deadline) {
			return time.Since(start), fmt.Errorf("%s: still not true after %v (%d checks): %w", what, timeout, tries, err)
		}
		time.Sleep(min(delay, deadline.Sub(now)))
		delay = min(2*delay, pollMax)
	}
}

// Eventually is Poll that fails the test (t.Fatal) when the deadline
// passes. It returns how long the condition took to hold.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	took, err := Poll(timeout, what, cond)
	if err != nil {
		t.Fatal(err)
	}
	return took
}

// Until is Eventually for a boolean condition (one that has nothing to
// say about why it does not hold yet).
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Eventually(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

var errNotYet = errors.New("condition false")
