package fault

import (
	"errors"
	"fmt"
	"testing"
)

func TestKind(t *testing.T) {
	cause := errors.New("etcd: unavailable")
	reason := New("no such network")
	for _, c := range []struct {
		err           error
		invalid, text bool
	}{
		{Invalidf("port %d is out of range", 99999), true, true},
		{fmt.Errorf("create: %w", Invalidf("bad name")), true, true},
		{fmt.Errorf("network n: %w", reason), true, true},
		{fmt.Errorf("list hosts: %w", cause), false, true},
		{Invalid(fmt.Errorf("wrapped: %w", cause)), true, true},
	} {
		if got := errors.Is(c.err, ErrInvalid); got != c.invalid {
			t.Errorf("%v: errors.Is(ErrInvalid) = %v", c.err, got)
		}
	}
	if e := Invalidf("port %d is out of range", 99999); e.Error() != "port 99999 is out of range" {
		t.Errorf("text %q: the kind's name must not be prepended", e)
	}
	if e := Invalid(fmt.Errorf("wrapped: %w", cause)); !errors.Is(e, cause) {
		t.Error("Invalid loses the cause")
	}
	if !errors.Is(fmt.Errorf("x: %w", reason), reason) || Invalid(nil) != nil {
		t.Error("sentinel identity or nil")
	}
}
