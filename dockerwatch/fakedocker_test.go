package dockerwatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/podnet/podnet/internal/testutil"
)

// fakeDocker is a Docker API whose containers and event streams the test
// controls.
type fakeDocker struct {
	mu         sync.Mutex
	containers map[string]ctr
	streams    []*fakeStream
	// down makes the next calls fail as if dockerd were unreachable;
	// downUntil, every call until then.
	down      int
	downUntil time.Time
	// downFirst is an outage that starts at the first call after it is
	// set, so a slow test setup cannot eat it before the watcher runs.
	downFirst time.Duration
	inspects  int
}

// setDownFor makes Docker unreachable for d from now.
func (f *fakeDocker) setDownFor(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downUntil = time.Now().Add(d)
}

// setDownFromFirstCall makes Docker unreachable for d from the next call.
func (f *fakeDocker) setDownFromFirstCall(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downFirst = d
}

// gone reports an outage; f.mu is held.
func (f *fakeDocker) gone() bool {
	if f.downFirst > 0 {
		f.downUntil = time.Now().Add(f.downFirst)
		f.downFirst = 0
	}
	return time.Now().Before(f.downUntil)
}

func (f *fakeDocker) Ping(context.Context) (types.Ping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone() {
		return types.Ping{}, errDockerDown
	}
	return types.Ping{APIVersion: "1.41"}, nil
}

type fakeStream struct {
	msgs chan events.Message
	errs chan error
	ctx  context.Context
}

func newFakeDocker() *fakeDocker { return &fakeDocker{containers: map[string]ctr{}} }

// ctr describes a container; inspect renders it as Docker would.
type ctr struct {
	id, name string
	state    string // running, paused, exited
	health   string // "" for no health check
	labels   map[string]string
	nets     []netEP
	// netMode is Docker's HostConfig.NetworkMode ("host", "container:X").
	netMode string
}

// netEP is one network attachment; ep "" is a network a stopped container
// is still configured for.
type netEP struct {
	net, ep, ip, ip6 string
	aliases          []string
}

func containerID(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(h[:])
}

func (c ctr) inspect() container.InspectResponse {
	st := &container.State{Status: c.state}
	switch c.state {
	case "running":
		st.Running = true
	case "paused":
		st.Running, st.Paused = true, true
	}
	if c.health != "" {
		st.Health = &container.Health{Status: c.health}
	}
	nets := map[string]*network.EndpointSettings{}
	for _, n := range c.nets {
		nets["name-"+n.net] = &network.EndpointSettings{NetworkID: n.net, EndpointID: n.ep,
			IPAddress: n.ip, GlobalIPv6Address: n.ip6, Aliases: append([]string(nil), n.aliases...)}
	}
	out := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.id, Name: "/" + c.name, State: st},
		Config:            &container.Config{Labels: c.labels},
		NetworkSettings:   &container.NetworkSettings{Networks: nets},
	}
	out.HostConfig = &container.HostConfig{NetworkMode: container.NetworkMode(c.netMode)}
	return out
}

func (f *fakeDocker) set(c ctr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[c.id] = c
}

func (f *fakeDocker) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

func (f *fakeDocker) setDown(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = n
}

func (f *fakeDocker) inspectCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inspects
}

func (f *fakeDocker) streamCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

func (f *fakeDocker) latest(t *testing.T) *fakeStream {
	t.Helper()
	var s *fakeStream
	testutil.Until(t, 10*time.Second, "an event subscription", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.streams) == 0 {
			return false
		}
		s = f.streams[len(f.streams)-1]
		return true
	})
	return s
}

// errDockerDown is what the real Docker client returns when its socket is
// gone (dockerd stopped).
var errDockerDown = func() error {
	c, err := client.NewClientWithOpts(client.WithHost("unix:///nonexistent/podnet-test/docker.sock"), client.WithVersion("1.41"))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Ping(context.Background())
	return err
}()

func (f *fakeDocker) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeStream{msgs: make(chan events.Message), errs: make(chan error, 1), ctx: ctx}
	if f.down > 0 || f.gone() {
		s.errs <- errDockerDown
	}
	f.streams = append(f.streams, s)
	return s.msgs, s.errs
}

func (f *fakeDocker) ContainerList(_ context.Context, _ container.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone() {
		return nil, errDockerDown
	}
	if f.down > 0 {
		f.down--
		return nil, errDockerDown
	}
	var out []container.Summary
	for _, c := range f.containers {
		if c.state != "running" && c.state != "paused" {
			continue
		}
		in := c.inspect()
		sum := container.Summary{ID: c.id, Names: []string{in.Name}, State: c.state,
			NetworkSettings: &container.NetworkSettingsSummary{Networks: in.NetworkSettings.Networks}}
		sum.HostConfig.NetworkMode = c.netMode
		out = append(out, sum)
	}
	return out, nil
}

func (f *fakeDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspects++
	c, ok := f.containers[id]
	for _, o := range f.containers {
		if !ok && o.name == id {
			c, ok = o, true
		}
	}
	if !ok {
		return container.InspectResponse{}, fmt.Errorf("No such container: %s: %w", id, cerrdefs.ErrNotFound)
	}
	return c.inspect(), nil
}

// send delivers one event on the stream.
func (s *fakeStream) send(t *testing.T, m events.Message) {
	t.Helper()
	select {
	case s.msgs <- m:
	case <-time.After(10 * time.Second):
		t.Fatalf("watcher did not take event %s %s", m.Type, m.Action)
	}
}

func containerEvent(id string, a events.Action) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: a, Actor: events.Actor{ID: id}}
}

func networkEvent(netID, containerID string, a events.Action) events.Message {
	return events.Message{Type: events.NetworkEventType, Action: a,
		Actor: events.Actor{ID: netID, Attributes: map[string]string{"container": containerID}}}
}
