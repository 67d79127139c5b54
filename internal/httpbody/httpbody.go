// Package httpbody reads an HTTP request's body under a deadline of its
// own, for podnet's two servers on unix sockets (the Docker plugin socket
// and the admin socket): a client that opens a connection and never
// finishes its body must not hold the connection, and its goroutine,
// forever.
//
// Why not http.Server.ReadTimeout: the server's background read that
// follows a fully read body would hit an expired ReadTimeout while a slow
// handler runs and cancel the request's context. So the deadline is set
// on the connection for the body only and lifted once the body is in;
// when reading fails it stays, and the response closes the connection
// (the server would otherwise try to drain the rest of the body, without
// a deadline, before answering).
package httpbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// ErrTimeout marks a body that did not arrive within the deadline.
var ErrTimeout = errors.New("request body not received in time")

// ErrTooLarge marks a body longer than the limit: refused whole, rather
// than cut at the limit (a cut body would fail to parse with a message
// about its syntax, not its size).
var ErrTooLarge = errors.New("request body too large")

// Read reads r's body, at most limit bytes, within timeout.
func Read(w http.ResponseWriter, r *http.Request, timeout time.Duration, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, r.ContentLength, limit)
	}
	rc := http.NewResponseController(w)
	deadlineSet := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		w.Header().Set("Connection", "close")
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w: %d bytes within %v", ErrTimeout, len(body), timeout)
		}
		return nil, err
	}
	if int64(len(body)) > limit {
		w.Header().Set("Connection", "close")
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if deadlineSet {
		_ = rc.SetReadDeadline(time.Time{})
	}
	return body, nil
}
