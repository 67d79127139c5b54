// Package fault holds podnet's one kind of "the caller's fault" error: a
// request, spec or file the caller must fix (a bad option, a taken VIP,
// an unknown host). The admin API answers it with HTTP 400 and every
// other error with 500; podnetctl, the plugin socket and the CNI plugin
// show its message as is. It links only the standard library, so every
// package may use it (netspec and admin included).
//
// Errors are classified by identity: errors.Is(err, ErrInvalid). An etcd
// outage, a kernel refusal or a bug is never of this kind, whatever the
// request: "no host X is known" is said only when etcd answered that.
package fault

import (
	"errors"
	"fmt"
)

// ErrInvalid is the kind: errors.Is(err, ErrInvalid) says the caller
// must fix the request.
var ErrInvalid = errors.New("invalid request")

// kindError is an error of the kind whose text is its own message (not
// prefixed with the kind's), wrapping its cause if any.
type kindError struct {
	msg   string
	cause error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Unwrap() error        { return e.cause }
func (e *kindError) Is(target error) bool { return target == ErrInvalid }

// New returns a sentinel of the kind, for a reason callers branch on
// beside it (errors.Is holds for both).
func New(msg string) error { return &kindError{msg: msg} }

// Invalid marks err as the caller's fault: same text, same chain (nil
// stays nil).
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{msg: err.Error(), cause: err}
}

// Invalidf is Invalid(fmt.Errorf(format, args...)).
func Invalidf(format string, args ...any) error { return Invalid(fmt.Errorf(format, args...)) }
