package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/raftkv/node/internal/testutil"
)

// fakeMember stands in for a member's peer server: it counts the pipeline
// messages it gets by sender, and answers a stream GET with a line every few
// milliseconds until the dialer goes away, like a stream's heartbeats.
type fakeMember struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[uint64]int // pipeline messages received, by sender
}

func newFakeMember(t *testing.T) *fakeMember {
	t.Helper()
	m := &fakeMember{got: make(map[uint64]int)}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *fakeMember) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		from, _ := strconv.ParseUint(r.Header.Get(hdrFrom), 16, 64)
		m.mu.Lock()
		m.got[from]++
		m.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc := http.NewResponseController(w)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := fmt.Fprintln(w, "beat"); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func (m *fakeMember) received(from uint64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.got[from]
}

// proxyRig is a Net with a proxy in front of each fake member.
type proxyRig struct {
	net     *Net
	members map[uint64]*fakeMember
	addrs   map[uint64]string // proxy addresses
	client  *http.Client
}

func newProxyRig(t *testing.T, ids ...uint64) *proxyRig {
	t.Helper()
	r := &proxyRig{
		members: make(map[uint64]*fakeMember),
		addrs:   make(map[uint64]string),
		client:  &http.Client{Transport: &http.Transport{}},
	}
	for _, id := range ids {
		r.members[id] = newFakeMember(t)
	}
	// Registered after the fake members: cleanups run in reverse, and a
	// fake member's Close waits for the streams that the Net ends.
	r.net = NewNet(zaptest.NewLogger(t))
	t.Cleanup(func() {
		if err := r.net.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		r.client.CloseIdleConnections()
	})
	for _, id := range ids {
		r.add(t, id)
	}
	return r
}

func (r *proxyRig) add(t *testing.T, id uint64) {
	t.Helper()
	if _, ok := r.members[id]; !ok {
		r.members[id] = newFakeMember(t)
	}
	ports := testutil.FreePorts(t, 1)
	r.addrs[id] = "127.0.0.1:" + strconv.Itoa(ports[0])
	if err := r.net.Add(id, r.addrs[id], r.members[id].srv.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
}

// post sends a pipeline message from one member to another through the
// receiver's proxy.
func (r *proxyRig) post(ctx context.Context, from, to uint64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.addrs[to]+pathPipeline, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(hdrFrom, strconv.FormatUint(from, 16))
	return r.client.Do(req)
}

// stream dials src's proxy, as member dst does to receive src's messages.
func (r *proxyRig) stream(ctx context.Context, src, dst uint64) (*http.Response, error) {
	url := fmt.Sprintf("http://%s/raft/stream/message/%x", r.addrs[src], dst)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(hdrFrom, strconv.FormatUint(dst, 16))
	return r.client.Do(req)
}

// heldFor is how long a request must go unanswered to count as held. A
// request that passes is answered in well under it on loopback.
const heldFor = 200 * time.Millisecond

// check tells whether data from→to gets through, on the pipeline or on a
// stream, and fails the test unless the outcome is a clean pass or a hold
// that ends in the client's timeout.
func (r *proxyRig) check(t *testing.T, kind string, from, to uint64) (passed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), heldFor)
	defer cancel()
	before := r.members[to].received(from)
	var resp *http.Response
	var err error
	if kind == "pipeline" {
		resp, err = r.post(ctx, from, to)
	} else {
		resp, err = r.stream(ctx, from, to)
	}
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s %d→%d: want a pass or a hold, got %v", kind, from, to, err)
		}
		if kind == "pipeline" && r.members[to].received(from) != before {
			t.Fatalf("pipeline %d→%d: held, yet the message was delivered", from, to)
		}
		return false
	}
	defer resp.Body.Close()
	if kind == "pipeline" {
		if resp.StatusCode != http.StatusNoContent || r.members[to].received(from) != before+1 {
			t.Fatalf("pipeline %d→%d: answer %s, delivered %d", from, to, resp.Status, r.members[to].received(from)-before)
		}
		return true
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatalf("stream %d→%d: no heartbeat: %v", from, to, err)
	}
	return true
}

// dialedStream is the dialer's end of a stream.
type dialedStream struct {
	*bufio.Reader
	cancel context.CancelFunc
}

// openStream opens a stream src→dst and returns its reader, having read
// one heartbeat.
func (r *proxyRig) openStream(t *testing.T, src, dst uint64) dialedStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := r.stream(ctx, src, dst)
	if err != nil {
		t.Fatalf("stream %d→%d: %v", src, dst, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("stream %d→%d: %v", src, dst, err)
	}
	return dialedStream{br, cancel}
}

// waitClosed reads heartbeats until the stream ends; the fake member never
// ends one, so only the proxy can. The dialer gives up after a deadline.
func waitClosed(t *testing.T, s dialedStream) {
	t.Helper()
	gaveUp := make(chan struct{})
	timer := time.AfterFunc(5*time.Second, func() { close(gaveUp); s.cancel() })
	defer timer.Stop()
	for {
		if _, err := s.ReadString('\n'); err != nil {
			select {
			case <-gaveUp:
				t.Fatal("the stream was not closed")
			default:
			}
			return
		}
	}
}

type linkCheck struct {
	kind     string
	from, to uint64
	pass     bool
}

func (r *proxyRig) checkAll(t *testing.T, checks []linkCheck) {
	t.Helper()
	for _, c := range checks {
		if got := r.check(t, c.kind, c.from, c.to); got != c.pass {
			t.Errorf("%s %d→%d: passed=%v, want %v", c.kind, c.from, c.to, got, c.pass)
		}
	}
}

func allLinks(ids []uint64, pass func(from, to uint64) bool) []linkCheck {
	var out []linkCheck
	for _, kind := range []string{"pipeline", "stream"} {
		for _, from := range ids {
			for _, to := range ids {
				if from != to {
					out = append(out, linkCheck{kind, from, to, pass(from, to)})
				}
			}
		}
	}
	return out
}

func TestNetFaults(t *testing.T) {
	ids := []uint64{1, 2, 3}
	tests := []struct {
		name   string
		inject func(n *Net)
		pass   func(from, to uint64) bool
	}{
		{"no fault", func(*Net) {}, func(from, to uint64) bool { return true }},
		{"one way", func(n *Net) { n.CutOneWay(1, 2) },
			func(from, to uint64) bool { return !(from == 1 && to == 2) }},
		{"one way, twice", func(n *Net) { n.CutOneWay(1, 2); n.CutOneWay(1, 2) },
			func(from, to uint64) bool { return !(from == 1 && to == 2) }},
		{"both ways", func(n *Net) { n.Cut(1, 2) },
			func(from, to uint64) bool { return !(from == 1 && to == 2) && !(from == 2 && to == 1) }},
		{"isolate", func(n *Net) { n.Isolate(3) },
			func(from, to uint64) bool { return from != 3 && to != 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newProxyRig(t, ids...)
			tt.inject(r.net)
			r.checkAll(t, allLinks(ids, tt.pass))
			r.net.Heal()
			r.checkAll(t, allLinks(ids, func(uint64, uint64) bool { return true }))
		})
	}
}

// An isolated member stays cut from members that join the Net later.
func TestNetIsolateCoversLaterMembers(t *testing.T) {
	r := newProxyRig(t, 1, 2)
	r.net.Isolate(1)
	r.add(t, 3)
	r.checkAll(t, allLinks([]uint64{1, 2, 3}, func(from, to uint64) bool { return from != 1 && to != 1 }))
}

// A cut closes the streams already carrying the cut direction, and only
// those.
func TestNetCutClosesOpenStreams(t *testing.T) {
	r := newProxyRig(t, 1, 2)
	cut := r.openStream(t, 1, 2)
	kept := r.openStream(t, 2, 1)
	r.net.CutOneWay(1, 2)
	waitClosed(t, cut)
	// Heartbeats keep coming on the other direction after the cut.
	for range 3 {
		if _, err := kept.ReadString('\n'); err != nil {
			t.Fatalf("stream 2→1 was closed by a cut of 1→2: %v", err)
		}
	}
}

// A held request is dropped, not answered, when the fault heals: a
// partition loses what was in flight.
func TestNetHealDropsHeldRequests(t *testing.T) {
	r := newProxyRig(t, 1, 2)
	r.net.CutOneWay(1, 2)
	errc := make(chan error, 1)
	go func() {
		resp, err := r.post(context.Background(), 1, 2)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %s", resp.Status)
		}
		errc <- err
	}()
	waitHolding(t, r.net, 1)
	r.net.Heal()
	if err := <-errc; err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held request after Heal: got %v, want a dropped connection", err)
	}
	if got := r.members[2].received(1); got != 0 {
		t.Fatalf("a held message was delivered %d times", got)
	}
	if !r.check(t, "pipeline", 1, 2) {
		t.Fatal("1→2 still held after Heal")
	}
}

// Close ends open streams and held requests and returns; TestMain's goleak
// check proves it left no goroutine.
func TestNetCloseWithOpenStreams(t *testing.T) {
	r := newProxyRig(t, 1, 2)
	open := r.openStream(t, 2, 1)
	r.net.Cut(1, 2)
	errc := make(chan error, 1)
	go func() {
		resp, err := r.post(context.Background(), 1, 2)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitHolding(t, r.net, 1)
	if err := r.net.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, open)
	if err := <-errc; err == nil {
		t.Fatal("a held request was answered by Close")
	}
	if err := r.net.Add(3, "127.0.0.1:0", "127.0.0.1:1"); !errors.Is(err, ErrNetClosed) {
		t.Fatalf("Add after Close: %v, want ErrNetClosed", err)
	}
}

func TestNetAddTwice(t *testing.T) {
	r := newProxyRig(t, 1)
	if err := r.net.Add(1, "127.0.0.1:0", "127.0.0.1:1"); !errors.Is(err, ErrDuplicateMember) {
		t.Fatalf("second Add of member 1: %v, want ErrDuplicateMember", err)
	}
}

// A member that is down looks down: its proxy drops the connection rather
// than answering 502.
func TestNetTargetDown(t *testing.T) {
	r := newProxyRig(t, 1)
	ports := testutil.FreePorts(t, 2)
	r.addrs[2] = "127.0.0.1:" + strconv.Itoa(ports[0])
	if err := r.net.Add(2, r.addrs[2], "127.0.0.1:"+strconv.Itoa(ports[1])); err != nil {
		t.Fatal(err)
	}
	resp, err := r.post(context.Background(), 1, 2)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got answer %s from a member that is down, want a dropped connection", resp.Status)
	}
}

func waitHolding(t *testing.T, n *Net, want int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%d requests held", want), func() error {
		n.mu.Lock()
		got := n.holding
		n.mu.Unlock()
		if got != want {
			return fmt.Errorf("%d held", got)
		}
		return nil
	})
}
