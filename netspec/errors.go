package netspec

import (
	"errors"
	"fmt"

	"github.com/podnet/podnet/internal/fault"
)

// ErrModeUnavailable marks a known mode this podnetd cannot create (not
// implemented, or vxlan without a multi-host setup). A spec the user must
// fix (an unknown mode or option, a malformed value, a subnet podnet
// cannot use) is of podnet's one kind of caller's fault, fault.ErrInvalid.
var ErrModeUnavailable = errors.New("network mode not available")

// specError carries the user's message; it matches its kind (and its
// cause, if any) with errors.Is but does not repeat the kind's text.
type specError struct {
	kind  error
	msg   string
	cause error
}

func (e *specError) Error() string { return e.msg }
func (e *specError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func invalidf(format string, args ...any) error {
	return &specError{kind: fault.ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

func unavailablef(format string, args ...any) error {
	return &specError{kind: ErrModeUnavailable, msg: fmt.Sprintf(format, args...)}
}
