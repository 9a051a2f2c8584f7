package etcdapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/raftkv/node/etcdapi"
	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/watch"
)

// TestMain fails the run if any goroutine outlives the tests.
// watchEnv is a watch hub fed by a watchtest.Store, served by etcd's Watch
// service over an in-memory gRPC connection.
type watchEnv struct {
	system *actor.ActorSystem
	hub    *actor.PID
	relay  *actor.PID
	store  *watchtest.Store
	m      *metrics.Node
	client pb.WatchClient
}

type envOptions struct {
	hub             watch.HubConfig
	noHub           bool
	noCodec         bool // the server without etcdapi.WatchCodec
	maxRequestBytes int
	dial            []grpc.DialOption
}

func newWatchEnv(t testing.TB, o envOptions) *watchEnv {
	t.Helper()
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	t.Cleanup(system.Shutdown)
	e := &watchEnv{system: system, m: metrics.New(prometheus.NewRegistry())}
	e.store = watchtest.NewStore(system.Root, nil)
	cfg := etcdapi.Config{Root: system.Root, History: watchtest.PrevHistory{Store: e.store}, ClusterID: 0x1234, MemberID: 0x99,
		MaxRequestBytes: o.maxRequestBytes, Timeout: 5 * time.Second}
	if !o.noHub {
		o.hub.Metrics = e.m
		hub := watch.NewHub(o.hub)
		pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return hub }), "watch")
		if err != nil {
			t.Fatal(err)
		}
		e.hub = pid
		relay, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
			return watchtest.NewPrevRelay(pid)
		}), "prev-relay")
		if err != nil {
			t.Fatal(err)
		}
		e.relay = relay
		e.store.SetHub(relay)
		cfg.Watch = pid
	}
	var opts []grpc.ServerOption
	if !o.noCodec {
		opts = append(opts, etcdapi.WatchCodec())
	}
	g := etcdapi.New(cfg).NewGRPCServer(opts...)
	lis := bufconn.Listen(256 << 10)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = g.Serve(lis)
	}()
	t.Cleanup(func() {
		g.Stop()
		<-served
	})
	dial := append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, o.dial...)
	conn, err := grpc.NewClient("passthrough:///bufnet", dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.client = pb.NewWatchClient(conn)
	return e
}

// sync returns once what the store sent before is in the hub's mailbox:
// a request to the hub made after it sees it.
func (e *watchEnv) sync(t testing.TB) {
	t.Helper()
	if _, err := e.system.Root.RequestFuture(e.relay, watchtest.RelaySync{}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
}

// wstream is one client stream; a goroutine reads it and hands each
// response over only when the test asks (next), so that a test that does
// not ask is a client that does not read.
type wstream struct {
	t     testing.TB
	s     pb.Watch_WatchClient
	resps chan *pb.WatchResponse
	err   error // after resps closed
	// held is what create read past, for next.
	held   []*pb.WatchResponse
	cancel context.CancelFunc
}

func (e *watchEnv) stream(t testing.TB) *wstream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.client.Watch(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &wstream{t: t, s: s, resps: make(chan *pb.WatchResponse), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.resps)
		for {
			r, err := s.Recv()
			if err != nil {
				c.err = err
				return
			}
			select {
			case c.resps <- r:
			case <-ctx.Done():
				c.err = ctx.Err()
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func (c *wstream) send(r *pb.WatchRequest) {
	c.t.Helper()
	if err := c.s.Send(r); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func createReq(cr *pb.WatchCreateRequest) *pb.WatchRequest {
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}}
}

func cancelReq(id int64) *pb.WatchRequest {
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}}
}

func progressReq() *pb.WatchRequest {
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}
}

// next waits for the next response.
func (c *wstream) next() *pb.WatchResponse {
	c.t.Helper()
	if len(c.held) > 0 {
		r := c.held[0]
		c.held = c.held[1:]
		return r
	}
	return c.recv()
}

func (c *wstream) recv() *pb.WatchResponse {
	c.t.Helper()
	select {
	case r, ok := <-c.resps:
		if !ok {
			c.t.Fatalf("stream ended: %v", c.err)
		}
		return r
	case <-time.After(10 * time.Second):
		c.t.Fatal("no watch response within 10s")
	}
	return nil
}

// ended waits for the stream to end, and returns its error.
func (c *wstream) ended() error {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r, ok := <-c.resps:
			if !ok {
				return c.err
			}
			c.t.Logf("response before the end: %v", r)
		case <-deadline:
			c.t.Fatal("stream did not end within 10s")
		}
	}
}

// create opens a watch and returns its created response; the responses of
// other watchers that come first are held for next.
func (c *wstream) create(cr *pb.WatchCreateRequest) *pb.WatchResponse {
	c.t.Helper()
	c.send(createReq(cr))
	for {
		r := c.recv()
		if r.Created {
			return r
		}
		c.held = append(c.held, r)
	}
}

func (c *wstream) watch(cr *pb.WatchCreateRequest) int64 {
	c.t.Helper()
	r := c.create(cr)
	if r.Canceled {
		c.t.Fatalf("create refused: %v", r)
	}
	return r.WatchId
}

// events reads responses until n events came, for any watcher; a
// canceled response fails the test. Progress responses are skipped.
func (c *wstream) events(n int) map[int64][]*mvccpb.Event {
	c.t.Helper()
	got := make(map[int64][]*mvccpb.Event)
	count := 0
	for count < n {
		r := c.next()
		if r.Canceled || r.Created {
			c.t.Fatalf("unexpected response while waiting for events (%d of %d): %v", count, n, r)
		}
		if r.Fragment {
			c.t.Fatalf("a fragment to a watcher that did not ask: %v", r)
		}
		for _, ev := range r.Events {
			if r.Header.Revision < ev.Kv.ModRevision {
				c.t.Fatalf("header revision %d below its event's %d", r.Header.Revision, ev.Kv.ModRevision)
			}
		}
		got[r.WatchId] = append(got[r.WatchId], r.Events...)
		count += len(r.Events)
	}
	if count > n {
		c.t.Fatalf("got %d events, want %d: %v", count, n, got)
	}
	return got
}

func describe(evs []*mvccpb.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %s@%d=%q", ev.Type, ev.Kv.Key, ev.Kv.ModRevision, ev.Kv.Value)
		if ev.PrevKv != nil {
			fmt.Fprintf(&b, "(prev %q@%d)", ev.PrevKv.Value, ev.PrevKv.ModRevision)
		}
		b.WriteString("; ")
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func checkEvents(t testing.TB, got []*mvccpb.Event, want string) {
	t.Helper()
	if d := describe(got); d != want {
		t.Fatalf("events:\n got %s\nwant %s", d, want)
	}
}

func TestWatchCreateEventsCancel(t *testing.T) {
	for _, noCodec := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCodec=%v", noCodec), func(t *testing.T) {
			e := newWatchEnv(t, envOptions{noCodec: noCodec})
			e.store.Put("x", "0") // revision 1, before the watches
			e.sync(t)
			c := e.stream(t)
			r := c.create(&pb.WatchCreateRequest{Key: []byte("a")})
			if r.WatchId != 0 || r.Canceled || r.Header.Revision != 1 || r.Header.ClusterId != 0x1234 || r.Header.MemberId != 0x99 {
				t.Fatalf("created: %v", r)
			}
			idB := c.watch(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("c")}) // prefix b
			if idB != 1 {
				t.Fatalf("second id %d, want 1", idB)
			}
			idAll := c.watch(&pb.WatchCreateRequest{Key: []byte{0}, RangeEnd: []byte{0}})
			e.store.Put("a", "1")                                                             // 2
			e.store.Put("b/1", "2")                                                           // 3
			e.store.Apply([]watchtest.Op{watchtest.Put("a", "3"), watchtest.Put("b/2", "4")}) // 4
			e.store.Delete("a")                                                               // 5
			got := c.events(3 + 2 + 5)
			checkEvents(t, got[0], `PUT a@2="1"; PUT a@4="3"; DELETE a@5=""`)
			checkEvents(t, got[idB], `PUT b/1@3="2"; PUT b/2@4="4"`)
			checkEvents(t, got[idAll], `PUT a@2="1"; PUT b/1@3="2"; PUT a@4="3"; PUT b/2@4="4"; DELETE a@5=""`)
			kv := got[0][1].Kv
			if kv.CreateRevision != 2 || kv.ModRevision != 4 || kv.Version != 2 || kv.Lease != 0 {
				t.Fatalf("kv %v", kv)
			}

			c.send(cancelReq(0))
			r = c.next()
			if !r.Canceled || r.WatchId != 0 || r.Created {
				t.Fatalf("cancel answered %v", r)
			}
			e.store.Put("a", "6")
			e.store.Put("b/3", "7")
			got = c.events(3)
			if len(got[0]) != 0 || len(got[idB]) != 1 || len(got[idAll]) != 2 {
				t.Fatalf("after the cancel: %v", got)
			}
			// The next server-assigned id goes on from the last.
			if id := c.watch(&pb.WatchCreateRequest{Key: []byte("a")}); id != 3 {
				t.Fatalf("id after a cancel %d, want 3", id)
			}
		})
	}
}

func TestWatchIDs(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	c := e.stream(t)
	if id := c.watch(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7}); id != 7 {
		t.Fatalf("client's id answered %d", id)
	}
	r := c.create(&pb.WatchCreateRequest{Key: []byte("b"), WatchId: 7})
	if !r.Canceled || r.WatchId != -1 || !strings.Contains(r.CancelReason, "duplicate watch ID") {
		t.Fatalf("duplicate id answered %v", r)
	}
	for want := int64(0); want < 3; want++ {
		if id := c.watch(&pb.WatchCreateRequest{Key: []byte("c"), WatchId: -1}); id != want {
			t.Fatalf("assigned id %d, want %d", id, want)
		}
	}
	// An empty range and a negative start are refused, as etcd's are.
	r = c.create(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")})
	if !r.Canceled || r.WatchId != -1 || r.CancelReason != "mvcc: watcher range is empty" {
		t.Fatalf("empty range answered %v", r)
	}
	r = c.create(&pb.WatchCreateRequest{Key: []byte("b"), StartRevision: -1})
	if !r.Canceled || r.WatchId != -1 || r.CancelReason != "etcdserver: mvcc: required revision has been compacted" {
		t.Fatalf("negative start answered %v", r)
	}
	// Canceling an id the stream does not have answers nothing: the next
	// response is the next create's.
	c.send(cancelReq(42))
	if id := c.watch(&pb.WatchCreateRequest{Key: []byte("d")}); id != 3 {
		t.Fatalf("id %d, want 3", id)
	}
	// The same ids on another stream are that stream's.
	if id := e.stream(t).watch(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7}); id != 7 {
		t.Fatalf("other stream: id %d", id)
	}
}

func TestWatchRanges(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	c := e.stream(t)
	fromC := c.watch(&pb.WatchCreateRequest{Key: []byte("c"), RangeEnd: []byte{0}})
	bToD := c.watch(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("d")})
	empty := c.watch(&pb.WatchCreateRequest{RangeEnd: []byte{0}}) // empty key: "\x00", so every key
	for _, k := range []string{"a", "b", "c", "c\x00", "d", "e"} {
		e.store.Put(k, "v")
	}
	got := c.events(4 + 3 + 6)
	keys := func(evs []*mvccpb.Event) string {
		var ks []string
		for _, ev := range evs {
			ks = append(ks, fmt.Sprintf("%q", ev.Kv.Key))
		}
		return strings.Join(ks, " ")
	}
	if k := keys(got[fromC]); k != `"c" "c\x00" "d" "e"` {
		t.Fatalf("from c: %s", k)
	}
	if k := keys(got[bToD]); k != `"b" "c" "c\x00"` {
		t.Fatalf("[b, d): %s", k)
	}
	if len(got[empty]) != 6 {
		t.Fatalf("every key: %s", keys(got[empty]))
	}
}

func TestWatchStartRevisionFromHistory(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	for i := 1; i <= 5; i++ {
		e.store.Put("k", fmt.Sprint(i))
	}
	e.store.Commit()
	e.store.Put("k", "6") // in the hub's tail, not committed
	e.sync(t)
	c := e.stream(t)
	r := c.create(&pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 3, PrevKv: true})
	if r.Canceled || r.Header.Revision != 6 {
		t.Fatalf("created %v", r)
	}
	e.store.Put("k", "7")
	e.store.Delete("k")
	got := c.events(6)
	checkEvents(t, got[r.WatchId], `PUT k@3="3"(prev "2"@2); PUT k@4="4"(prev "3"@3); PUT k@5="5"(prev "4"@4); `+
		`PUT k@6="6"(prev "5"@5); PUT k@7="7"(prev "6"@6); DELETE k@8=""(prev "7"@7)`)
	// A start in the future waits for it.
	id := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 10})
	e.store.Put("k", "9")
	e.store.Put("k", "10")
	got = c.events(1 + 2) // the first watcher's two, the second's one
	checkEvents(t, got[id], `PUT k@10="10"`)
}

func TestWatchPrevKVAndFilters(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	c := e.stream(t)
	prev := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l"), PrevKv: true})
	noPut := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	noDel := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}})
	plain := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	e.store.Put("k1", "a")
	e.store.Put("k1", "b")
	e.store.Apply([]watchtest.Op{watchtest.Put("k2", "c"), watchtest.Del("k1"), watchtest.Put("k3", "d")})
	e.store.Delete("k2")
	got := c.events(6 + 2 + 4 + 6)
	checkEvents(t, got[prev], `PUT k1@1="a"; PUT k1@2="b"(prev "a"@1); PUT k2@3="c"; DELETE k1@3=""(prev "b"@2); PUT k3@3="d"; DELETE k2@4=""(prev "c"@3)`)
	checkEvents(t, got[noPut], `DELETE k1@3=""; DELETE k2@4=""`)
	checkEvents(t, got[noDel], `PUT k1@1="a"; PUT k1@2="b"; PUT k2@3="c"; PUT k3@3="d"`)
	checkEvents(t, got[plain], `PUT k1@1="a"; PUT k1@2="b"; PUT k2@3="c"; DELETE k1@3=""; PUT k3@3="d"; DELETE k2@4=""`)
}

func TestWatchCompactedStart(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	for i := 1; i <= 6; i++ {
		e.store.Put("k", fmt.Sprint(i))
	}
	e.store.Commit()
	e.store.Compact(4) // revisions through 4 are gone: a watch may start from 5
	e.sync(t)
	c := e.stream(t)
	r := c.create(&pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 2})
	if r.Canceled || r.Header.Revision != 6 {
		t.Fatalf("created %v", r)
	}
	r2 := c.next()
	if r2.WatchId != r.WatchId || !r2.Canceled || r2.CompactRevision != 5 || len(r2.Events) != 0 {
		t.Fatalf("compacted watch answered %v", r2)
	}
	// Resuming from the compact revision works.
	id := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), StartRevision: r2.CompactRevision})
	got := c.events(2)
	checkEvents(t, got[id], `PUT k@5="5"; PUT k@6="6"`)
	// The compacted watcher's id stays taken until the client cancels it,
	// as etcd's.
	c.send(cancelReq(r.WatchId))
	if r := c.next(); !r.Canceled || r.WatchId != r2.WatchId {
		t.Fatalf("cancel of the compacted watcher answered %v", r)
	}
}

func TestWatchProgressRequest(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	c := e.stream(t)
	// With no watcher, the answer is the current revision.
	e.store.Put("x", "1")
	e.sync(t)
	c.send(progressReq())
	if r := c.next(); r.WatchId != -1 || r.Header.Revision != 1 || len(r.Events) != 0 || r.Created || r.Canceled {
		t.Fatalf("progress answered %v", r)
	}
	idle := c.watch(&pb.WatchCreateRequest{Key: []byte("idle")})
	busy := c.watch(&pb.WatchCreateRequest{Key: []byte("busy")})
	e.store.Put("busy", "2")
	e.store.Put("other", "3")
	e.store.Commit()
	e.sync(t)
	// A watcher catching up from the history holds the answer back until
	// it sent what it read.
	past := c.watch(&pb.WatchCreateRequest{Key: []byte("busy"), StartRevision: 1})
	c.send(progressReq())
	var seen []string
	for {
		r := c.next()
		if r.WatchId == -1 {
			if r.Header.Revision != 3 || len(r.Events) != 0 {
				t.Fatalf("progress answered %v", r)
			}
			break
		}
		seen = append(seen, fmt.Sprintf("%d:%s", r.WatchId, describe(r.Events)))
	}
	want := []string{fmt.Sprintf(`%d:PUT busy@2="2"`, busy), fmt.Sprintf(`%d:PUT busy@2="2"`, past)}
	if strings.Join(seen, ",") != strings.Join(want, ",") && strings.Join(seen, ",") != strings.Join([]string{want[1], want[0]}, ",") {
		t.Fatalf("before the progress response: %v, want %v", seen, want)
	}
	_ = idle
}

func TestWatchProgressNotify(t *testing.T) {
	e := newWatchEnv(t, envOptions{hub: watch.HubConfig{ProgressInterval: 20 * time.Millisecond}})
	e.store.Put("other", "1")
	c := e.stream(t)
	id := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), ProgressNotify: true})
	e.store.Put("other", "2")
	// Progress notifications carry the watcher's id and move on with the
	// revision.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.next()
		if r.WatchId != id || len(r.Events) != 0 || r.Canceled || r.Created {
			t.Fatalf("progress notification %v", r)
		}
		if r.Header.Revision == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress notification at revision 2")
		}
	}
}

func TestWatchFragments(t *testing.T) {
	e := newWatchEnv(t, envOptions{maxRequestBytes: 1024})
	c := e.stream(t)
	frag := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l"), Fragment: true})
	whole := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	// Four events of 200 KiB in one revision: past the limit (1 KiB +
	// etcd's 512 KiB of gRPC overhead), two events to a fragment.
	big := strings.Repeat("v", 200<<10)
	var ops []watchtest.Op
	for i := range 4 {
		ops = append(ops, watchtest.Put(fmt.Sprintf("k%d", i), big))
	}
	e.store.Apply(ops)
	var frags []*pb.WatchResponse
	var wholes []*pb.WatchResponse
	for len(wholes) < 1 || len(frags) == 0 || frags[len(frags)-1].Fragment {
		r := c.next()
		switch r.WatchId {
		case frag:
			frags = append(frags, r)
		case whole:
			wholes = append(wholes, r)
		}
	}
	if len(wholes) != 1 || len(wholes[0].Events) != 4 || wholes[0].Fragment {
		t.Fatalf("the watcher without fragments got %d responses", len(wholes))
	}
	if len(frags) != 2 || !frags[0].Fragment || frags[1].Fragment || len(frags[0].Events) != 2 || len(frags[1].Events) != 2 {
		t.Fatalf("fragments: %d responses", len(frags))
	}
	for i, r := range frags {
		if r.Header.Revision != 1 {
			t.Fatalf("fragment %d header %v", i, r.Header)
		}
		for j, ev := range r.Events {
			if want := fmt.Sprintf("k%d", 2*i+j); string(ev.Kv.Key) != want || len(ev.Kv.Value) != len(big) {
				t.Fatalf("fragment %d event %d: key %q", i, j, ev.Kv.Key)
			}
		}
	}
}

// A client that does not read makes the server's sends block; its
// watchers' hub queues overflow. They go on from the history, and the
// client gets every revision once, in order.
func TestWatchSlowClientResumes(t *testing.T) {
	e := newWatchEnv(t, envOptions{
		hub: watch.HubConfig{MaxQueuedEvents: 4, MaxQueuedBytes: 64 << 10},
		dial: []grpc.DialOption{
			grpc.WithInitialWindowSize(64 << 10), grpc.WithInitialConnWindowSize(64 << 10),
			grpc.WithReadBufferSize(0),
		},
	})
	c := e.stream(t)
	slow := c.watch(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	other := c.watch(&pb.WatchCreateRequest{Key: []byte("k1")})
	value := strings.Repeat("x", 8<<10)
	deadline := time.Now().Add(20 * time.Second)
	n, wantOther := 0, 0
	put := func(key, value string) {
		e.store.Put(key, value)
		n++
		if key == "k1" {
			wantOther++
		}
	}
	for promtest.ToFloat64(e.m.Watch.Overflows) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no overflow after %d revisions", n)
		}
		for range 8 {
			put(fmt.Sprintf("k%d", n%3), value)
		}
		e.store.Commit()
	}
	// The client reads again.
	put("k1", "last")
	e.store.Commit()
	got := c.events(n + wantOther)
	for id, want := range map[int64]int{slow: n, other: wantOther} {
		evs := got[id]
		if len(evs) != want {
			t.Fatalf("watcher %d: %d events, want %d", id, len(evs), want)
		}
		last := int64(0)
		for _, ev := range evs {
			if ev.Kv.ModRevision <= last {
				t.Fatalf("watcher %d: revision %d after %d", id, ev.Kv.ModRevision, last)
			}
			last = ev.Kv.ModRevision
		}
	}
}

// A snapshot replacing the state ends the hub's watches: a watcher goes on
// from the new history, or, if that no longer holds its next revision, is
// told the compact revision.
func TestWatchReset(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	c := e.stream(t)
	behind := c.watch(&pb.WatchCreateRequest{Key: []byte("a")})
	current := c.watch(&pb.WatchCreateRequest{Key: []byte("b")})
	e.store.Put("a", "1") // 1
	e.store.Put("b", "2") // 2
	e.store.Commit()
	c.events(2)
	e.store.Reset(10, 5) // "a" resumes at 3: compacted; so does "b"
	r := c.next()
	if r.WatchId != behind && r.WatchId != current || !r.Canceled || r.CompactRevision != 6 {
		t.Fatalf("after a reset: %v", r)
	}
	r = c.next()
	if !r.Canceled || r.CompactRevision != 6 {
		t.Fatalf("after a reset: %v", r)
	}
	w := c.watch(&pb.WatchCreateRequest{Key: []byte("c")})
	e.store.Put("c", "11")
	e.store.Commit()
	got := c.events(1)
	checkEvents(t, got[w], `PUT c@11="11"`)
	e.store.Reset(20, 11) // resumes at 12: served
	e.store.Put("c", "21")
	got = c.events(1)
	checkEvents(t, got[w], `PUT c@21="21"`)
}

// A member that stops ends its streams as etcd's does: Unavailable,
// "server stopped", which clientv3 resumes elsewhere.
func TestWatchStopping(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	c := e.stream(t)
	c.watch(&pb.WatchCreateRequest{Key: []byte("a")})
	if _, err := e.system.Root.RequestFuture(e.hub, watch.StopWatches{}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	err := c.ended()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "server stopped") {
		t.Fatalf("stream ended with %v", err)
	}
	// A new stream's first create ends it alike.
	c2 := e.stream(t)
	c2.send(createReq(&pb.WatchCreateRequest{Key: []byte("a")}))
	if err := c2.ended(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream ended with %v", err)
	}
}

func TestWatchWithoutHub(t *testing.T) {
	e := newWatchEnv(t, envOptions{noHub: true})
	c := e.stream(t)
	if err := c.ended(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream ended with %v", err)
	}
}

// The client closing its side leaves the watches on, as etcd's; canceling
// its context ends the stream.
func TestWatchCloseSend(t *testing.T) {
	e := newWatchEnv(t, envOptions{})
	c := e.stream(t)
	id := c.watch(&pb.WatchCreateRequest{Key: []byte("a")})
	if err := c.s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	e.store.Put("a", "1")
	checkEvents(t, c.events(1)[id], `PUT a@1="1"`)
	c.cancel()
	if err := c.ended(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("ended with %v", err)
	}
}

// BenchmarkWatchFanOut: 1,000 watchers of one prefix on 10 streams; each
// op is one revision written and received by every watcher.
func BenchmarkWatchFanOut(b *testing.B) {
	for _, noCodec := range []bool{false, true} {
		b.Run(fmt.Sprintf("noCodec=%v", noCodec), func(b *testing.B) {
			const streams, perStream = 10, 100
			e := newWatchEnv(b, envOptions{noCodec: noCodec})
			var wg sync.WaitGroup
			counts := make(chan int, streams)
			cs := make([]*wstream, streams)
			for i := range cs {
				cs[i] = e.stream(b)
				for range perStream {
					cs[i].watch(&pb.WatchCreateRequest{Key: []byte("k/"), RangeEnd: []byte("k0")})
				}
			}
			value := strings.Repeat("v", 256)
			b.ReportAllocs()
			b.ResetTimer()
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := 0
					for n < perStream*b.N {
						r, ok := <-c.resps
						if !ok {
							break
						}
						n += len(r.Events)
					}
					counts <- n
				}()
			}
			for i := range b.N {
				e.store.Put(fmt.Sprintf("k/%d", i%100), value)
				if i%64 == 63 {
					e.store.Commit()
				}
			}
			wg.Wait()
			b.StopTimer()
			close(counts)
			for n := range counts {
				if n != perStream*b.N {
					b.Fatalf("a stream got %d events, want %d", n, perStream*b.N)
				}
			}
		})
	}
}
