package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// errNoBody marks a call that needs a JSON body and came with none: what
// dockerd sends when it retries a call whose connection broke because
// podnetd stopped while handling it (see readBody).
var errNoBody = errors.New("request without a body")

// errBodyTimeout marks a body that did not arrive within the deadline.
var errBodyTimeout = errors.New("request body not received in time")

// readBody reads r's body (at most maxBody bytes) under a read deadline of
// timeout. The deadline is per request on the connection, not
// http.Server.ReadTimeout: the server's background read that follows a
// fully read body would hit an expired ReadTimeout while a slow handler
// runs and cancel the request's context. So the deadline is lifted once
// the body is in; when reading fails it stays, and the response closes
// the connection: the server would otherwise try to drain the rest of the
// body, without a deadline, before answering.
func readBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	deadlineSet := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		w.Header().Set("Connection", "close")
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w: %d bytes within %v", errBodyTimeout, len(body), timeout)
		}
		return nil, err
	}
	if deadlineSet {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errNoBody
	}
	return body, nil
}

// bodyError is the answer to a request whose body could not be used: the
// HTTP status and the message for dockerd. A missing body gets status 200
// and a message saying what happened, because it is dockerd's own retry:
// its plugin client (moby pkg/plugins, Client.callWithRetry) re-sends a
// call whose connection failed with the same bytes.Buffer, which the
// first attempt already drained, so the retry is a POST with
// Content-Length 0. podnet cannot know what the first attempt asked for,
// so it does nothing and says so; dockerd shows the message to the user
// (container starts) or logs it (releases, which garbage collection then
// completes).
func (s *Server) bodyError(method string, err error) (int, string) {
	switch {
	case errors.Is(err, errNoBody):
		return http.StatusOK, fmt.Sprintf("podnet: %s arrived without its request body: dockerd sends that when it retries a call that was cut off because podnetd stopped (this podnetd started %s ago). Nothing was done: run the docker command again; anything the interrupted call left behind is reclaimed by garbage collection (podnetctl gc)",
			method, time.Since(s.started).Round(time.Second))
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout, fmt.Sprintf("podnet: %s: %v", method, err)
	}
	return http.StatusBadRequest, fmt.Sprintf("podnet: malformed %s request: %v", method, err)
}
