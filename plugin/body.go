package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/podnet/podnet/internal/httpbody"
	"net/http"
	"time"
)

// errNoBody marks a call that needs a JSON body and came with none: what
// dockerd sends when it retries a call whose connection broke because
// podnetd stopped while handling it (see readBody).
var errNoBody = errors.New("request without a body")

// readBody reads r's body (at most maxBody bytes) under a read deadline of
// timeout (httpbody.Read); an empty one is errNoBody.
func readBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) ([]byte, error) {
	body, err := httpbody.Read(w, r, timeout, maxBody)
	if err != nil {
		return nil, err
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
	case errors.Is(err, httpbody.ErrTimeout):
		return http.StatusRequestTimeout, fmt.Sprintf("podnet: %s: %v", method, err)
	}
	return http.StatusBadRequest, fmt.Sprintf("podnet: malformed %s request: %v", method, err)
}
