package testutil

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPollReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	if _, err := Poll(10*time.Second, "third check", func() error {
		n++
		return holds(n == 3)
	}); err != nil || n != 3 {
		t.Fatalf("Poll: %v after %d checks, want nil after 3", err, n)
	}
}

func TestPollFailureNamesWhatItAwaitedAndWhatItSaw(t *testing.T) {
	n := 0
	_, err := Poll(50*time.Millisecond, "the bridge to appear", func() error {
		n++
		return errors.New("no link pn-x")
	})
	if err == nil {
		t.Fatal("Poll of a condition that never holds returned nil")
	}
	for _, want := range []string{"the bridge to appear", "50ms", "no link pn-x"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n < 2 {
		t.Errorf("condition checked %d times: it must run again at the deadline", n)
	}
}

func holds(ok bool) error {
	if ok {
		return nil
	}
	return errNotYet
}
