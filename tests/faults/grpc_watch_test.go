package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"

	"github.com/raftkv/node/internal/testutil"
)

// fakeGRPCWatch is a member's Watch service as a script: the n-th stream
// (from 1) gets the n-th step, after its create request, which it records.
// A step returns the stream's end (nil: the stream ends cleanly); past the
// script, a stream is created and waits for the watcher to leave.
type fakeGRPCWatch struct {
	pb.UnimplementedWatchServer
	script []func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error

	mu      sync.Mutex
	creates []*pb.WatchCreateRequest
}

func (f *fakeGRPCWatch) Watch(s pb.Watch_WatchServer) error {
	req, err := s.Recv()
	if err != nil {
		return err
	}
	cr := req.GetCreateRequest()
	f.mu.Lock()
	f.creates = append(f.creates, cr)
	n := len(f.creates)
	f.mu.Unlock()
	if n > len(f.script) {
		if err := s.Send(created(7, 1)); err != nil {
			return err
		}
		<-s.Context().Done()
		return nil
	}
	return f.script[n-1](s, cr)
}

func (f *fakeGRPCWatch) starts() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int64
	for _, cr := range f.creates {
		out = append(out, cr.StartRevision)
	}
	return out
}

func hdr(rev int64) *pb.ResponseHeader { return &pb.ResponseHeader{Revision: rev} }

func created(id, rev int64) *pb.WatchResponse {
	return &pb.WatchResponse{Header: hdr(rev), WatchId: id, Created: true}
}

func gput(key, value string, create, mod, version int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: []byte(value),
		CreateRevision: create, ModRevision: mod, Version: version}}
}

func gdel(key string, mod int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: mod}}
}

func events(id int64, evs ...*mvccpb.Event) *pb.WatchResponse {
	return &pb.WatchResponse{Header: hdr(evs[len(evs)-1].Kv.ModRevision), WatchId: id, Events: evs}
}

// sendAll sends every response, stopping at the first error.
func sendAll(s pb.Watch_WatchServer, resps ...*pb.WatchResponse) error {
	for _, r := range resps {
		if err := s.Send(r); err != nil {
			return err
		}
	}
	return nil
}

// runGRPCWatcher serves f on a local port and runs w against it until
// the test ends; it returns Run's result channel.
func runGRPCWatcher(t *testing.T, w *GRPCWatcher, f *fakeGRPCWatch) <-chan error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	pb.RegisterWatchServer(g, f)
	go func() { _ = g.Serve(l) }()
	w.URL = "http://" + l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
		g.Stop()
	})
	return done
}

func waitGRPCThrough(t *testing.T, w *GRPCWatcher, rev uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WaitThrough(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// The watcher follows streams through a break, a canceled watch, a
// refusal a retry mends, a progress notification, several revisions in
// one response, and resumes each time at the revision after the last it
// received through.
func TestGRPCWatcherResumes(t *testing.T) {
	f := &fakeGRPCWatch{script: []func(pb.Watch_WatchServer, *pb.WatchCreateRequest) error{
		func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			if string(cr.Key) != "r" || string(cr.RangeEnd) != "s" || !cr.ProgressNotify {
				return fmt.Errorf("create %v: not a watch of the prefix r with progress", cr)
			}
			// Revisions 5 and 7 in one response, then a break.
			if err := sendAll(s, created(3, 9),
				events(3, gput("r-a", "1", 5, 5, 1), gput("r-a", "2", 5, 7, 2), gdel("r-b", 7))); err != nil {
				return err
			}
			return rpctypes.ErrGRPCStopped
		},
		func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			// Refused for now: a retry may mend it.
			return sendAll(s, &pb.WatchResponse{Header: hdr(9), WatchId: -1, Created: true, Canceled: true,
				CancelReason: "etcdserver: request timed out"})
		},
		func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			// A progress notification, then the watch canceled by the member.
			if err := sendAll(s, created(0, 9), &pb.WatchResponse{Header: hdr(9), WatchId: 0},
				&pb.WatchResponse{Header: hdr(9), WatchId: 0, Canceled: true, CancelReason: "etcdserver: reset"}); err != nil {
				return err
			}
			<-s.Context().Done()
			return nil
		},
		func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			if err := sendAll(s, created(1, 11), events(1, gput("r-c", "3", 11, 11, 1))); err != nil {
				return err
			}
			<-s.Context().Done()
			return nil
		},
	}}
	w := &GRPCWatcher{Watcher{Member: 2, Prefix: "r", Start: 5, Backoff: time.Millisecond}}
	done := runGRPCWatcher(t, w, f)
	waitGRPCThrough(t, w, 11)

	msgs, st := w.Drain(10)
	want := []WatchMsg{
		{Revision: 5, Conn: 1, Covered: 4, Events: []WatchEvent{{Type: "put", Key: "r-a", Value: "1", CreateRevision: 5, ModRevision: 5, Version: 1}}},
		{Revision: 7, Conn: 1, Covered: 5, Events: []WatchEvent{{Type: "put", Key: "r-a", Value: "2", CreateRevision: 5, ModRevision: 7, Version: 2},
			{Type: "delete", Key: "r-b", ModRevision: 7}}},
	}
	for i := range msgs {
		if msgs[i].At.IsZero() {
			t.Errorf("message %v without the time it was received", msgs[i])
		}
		msgs[i].At = time.Time{}
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("drained %v\nwant %v", msgs, want)
	}
	wantStats := WatchStats{Messages: 3, Events: 4, Progress: 1, Connections: 3, Failed: 1, Breaks: 1,
		Ends: map[string]int{"canceled: etcdserver: reset": 1}}
	if !reflect.DeepEqual(st, wantStats) {
		t.Errorf("stats %+v\nwant %+v", st, wantStats)
	}
	if msgs, _ := w.Drain(100); len(msgs) != 1 || msgs[0].Revision != 11 || msgs[0].Conn != 3 || msgs[0].Covered != 9 {
		t.Errorf("the second drain took %+v, want revision 11 of connection 3, after the progress's 9", msgs)
	}
	if got, want := f.starts(), []int64{5, 8, 8, 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("start revisions %v, want %v", got, want)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while the stream lasts", err)
	default:
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
}

// A compacted answer stops the watcher, as the SSE watcher's 410 does,
// whether it comes with the creation or after it; so do a refused watch
// and an answer that breaks the contract.
func TestGRPCWatcherStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		step func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error
		want error
	}{
		{"compacted after the creation", func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			return sendAll(s, created(0, 20), &pb.WatchResponse{Header: hdr(20), WatchId: 0, Canceled: true, CompactRevision: 12})
		}, ErrWatchCompacted},
		{"compacted with the creation", func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			return sendAll(s, &pb.WatchResponse{Header: hdr(20), WatchId: 0, Created: true, Canceled: true, CompactRevision: 12})
		}, ErrWatchCompacted},
		{"events of another watch", func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			return sendAll(s, created(0, 20), events(4, gput("r-a", "1", 5, 5, 1)))
		}, ErrMalformedAnswer},
		{"a delete with a value", func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			ev := gdel("r-a", 5)
			ev.Kv.Value = []byte("x")
			return sendAll(s, created(0, 20), events(0, ev))
		}, ErrMalformedAnswer},
		{"no creation first", func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			return sendAll(s, events(0, gput("r-a", "1", 5, 5, 1)))
		}, ErrMalformedAnswer},
		{"refused", func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
			return sendAll(s, &pb.WatchResponse{Header: hdr(20), WatchId: -1, Created: true, Canceled: true, CancelReason: "mvcc: watcher range is empty"})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeGRPCWatch{script: []func(pb.Watch_WatchServer, *pb.WatchCreateRequest) error{
				func(s pb.Watch_WatchServer, cr *pb.WatchCreateRequest) error {
					if err := tc.step(s, cr); err != nil {
						return err
					}
					<-s.Context().Done()
					return nil
				},
			}}
			w := &GRPCWatcher{Watcher{Member: 1, Prefix: "r", Start: 5, Backoff: time.Millisecond}}
			done := runGRPCWatcher(t, w, f)
			select {
			case err := <-done:
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("Run: %v, want %v", err, tc.want)
				}
				if !errors.Is(w.WaitThrough(context.Background(), 100), err) {
					t.Errorf("WaitThrough does not return the watcher's error")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the watcher did not stop")
			}
		})
	}
}

// A stream that brings nothing for Idle is cut and resumed, and a
// Lifetime cuts a stream that lasts.
func TestGRPCWatcherCuts(t *testing.T) {
	f := &fakeGRPCWatch{}
	w := &GRPCWatcher{Watcher{Member: 1, Prefix: "r", Start: 1, Idle: 100 * time.Millisecond, Backoff: time.Millisecond}}
	runGRPCWatcher(t, w, f)
	testutil.Eventually(t, 10*time.Second, "a silent stream cut", func() error {
		_, st := w.Drain(0)
		if st.Idle == 0 {
			return errors.New("no stream cut for silence yet")
		}
		return nil
	})
	g := &GRPCWatcher{Watcher{Member: 1, Prefix: "r", Start: 1, Backoff: time.Millisecond,
		Lifetime: func() time.Duration { return 50 * time.Millisecond }}}
	runGRPCWatcher(t, g, &fakeGRPCWatch{})
	cuts := 0
	testutil.Eventually(t, 10*time.Second, "streams cut at their lifetime", func() error {
		_, st := g.Drain(0)
		cuts += st.Cuts
		if cuts < 2 {
			return fmt.Errorf("%d cuts", cuts)
		}
		return nil
	})
}

func TestGRPCWatchMsgs(t *testing.T) {
	msgs, err := grpcWatchMsgs([]*mvccpb.Event{gput("a", "1", 3, 3, 1), gput("b", "2", 4, 4, 1), gdel("a", 4), gput("a", "3", 6, 6, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var revs []uint64
	for _, m := range msgs {
		revs = append(revs, m.Revision)
	}
	if !reflect.DeepEqual(revs, []uint64{3, 4, 6}) || len(msgs[1].Events) != 2 {
		t.Fatalf("messages %v", msgs)
	}
	lease := gput("a", "1", 3, 3, 1)
	lease.Kv.Lease = 42
	if msgs, err := grpcWatchMsgs([]*mvccpb.Event{lease}); err != nil || msgs[0].Events[0].Lease != 42 {
		t.Fatalf("a put with a lease: %v %v", msgs, err)
	}
	for _, bad := range []*mvccpb.Event{{Type: mvccpb.Event_PUT}, gput("a", "1", 3, 0, 1), {Type: 7, Kv: &mvccpb.KeyValue{Key: []byte("a"), ModRevision: 3}}} {
		if _, err := grpcWatchMsgs([]*mvccpb.Event{bad}); err == nil {
			t.Errorf("%v taken", bad)
		}
	}
	if got := prefixRangeEnd("r"); got != "s" {
		t.Errorf("prefixRangeEnd(r) = %q", got)
	}
	if got := prefixRangeEnd("a\xff"); got != "b" {
		t.Errorf("prefixRangeEnd(a\\xff) = %q", got)
	}
	if got := prefixRangeEnd("\xff"); got != "\x00" {
		t.Errorf("prefixRangeEnd(\\xff) = %q", got)
	}
}
