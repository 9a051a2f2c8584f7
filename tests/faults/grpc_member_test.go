package faults

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
)

// TestGRPCAgainstAMember runs HTTP and gRPC workers together against one
// real member, with a watcher of each door, kills the member in the
// middle and starts it again, and checks what they saw as the fault
// schedule does: the history is linearizable across both doors, reads
// through one door saw writes through the other, both watchers saw every
// acknowledged write once, in order, alike, resuming after the kill.
func TestGRPCAgainstAMember(t *testing.T) {
	bin := nodeproc.Node(t)
	m, cluster := newTestMember(t)
	if err := m.Start(bin, cluster, false); err != nil {
		t.Fatal(err)
	}
	eventuallyMember(t, m, "first write", func(ctx context.Context) error { return memberPut(ctx, m, "x", "1") })

	wctx, wcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		wcancel()
		wg.Wait()
	}()
	sse := &Watcher{Member: 1, URL: m.ClientURL, Prefix: "r", Start: 1, Backoff: 10 * time.Millisecond}
	g := &GRPCWatcher{Watcher{Member: 1, URL: m.ClientURL, Prefix: "r", Start: 1, Backoff: 10 * time.Millisecond,
		Lifetime: func() time.Duration { return 700 * time.Millisecond }}}
	wg.Go(func() { _ = sse.Run(wctx) })
	wg.Go(func() { _ = g.Run(wctx) })

	rec := NewRecorder()
	w := Workers{Endpoints: []string{m.ClientURL}, Clients: 4, GRPC: 2, Keys: 6, Timeout: time.Second, Rec: rec,
		Seed: 11, KeyPrefix: "r1-k", OddKeys: 10}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(1500 * time.Millisecond) // load before the kill: not synchronization
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // requests refused while down
	if err := m.Start(bin, cluster, false); err != nil {
		t.Fatal(err)
	}
	eventuallyMember(t, m, "write after restart", func(ctx context.Context) error { return memberPut(ctx, m, "x", "2") })
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ops := rec.Ops()
	grpcFirst := w.Clients - w.GRPC
	var grpcOK, httpOK, crossReads int
	writer := map[string]int{} // value -> client
	for _, op := range ops {
		if op.Input.Kind.leavesPresent() {
			writer[op.Input.Value] = op.Client
		}
	}
	for _, op := range ops {
		if op.Status == StatusOK {
			if op.Client >= grpcFirst {
				grpcOK++
			} else {
				httpOK++
			}
		}
		if op.Input.Kind == OpGet && op.Status == StatusOK && op.Output.Found {
			if wr, ok := writer[op.Output.Value]; ok && (wr >= grpcFirst) != (op.Client >= grpcFirst) {
				crossReads++
			}
		}
	}
	t.Logf("%d operations: %v; ok through gRPC %d, through HTTP %d; %d reads of a write through the other door; conditional %v; refusals %v",
		len(ops), rec.Counts(), grpcOK, httpOK, crossReads, rec.ConditionalCounts(), CountRefusals(ops))
	if grpcOK < 50 || httpOK < 50 || crossReads < 10 {
		t.Errorf("too little happened through both doors")
	}
	for _, op := range ops {
		if op.Cause != "" && (containsErr(op.Cause, ErrMalformedAnswer) || containsErr(op.Cause, ErrBadRefusal)) {
			t.Errorf("client %d %v %q: %s", op.Client, op.Input.Kind, op.Input.Key, op.Cause)
		}
	}
	if r := CountRefusals(ops); r.Refused == 0 {
		t.Errorf("no refused key was refused: %v", r)
	}
	if _, err := rec.Check(time.Minute, ""); err != nil {
		t.Fatalf("linearizability across both doors: %v", err)
	}

	mctx, mcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer mcancel()
	if err := memberPut(mctx, m, "r-sync", "marker"); err != nil {
		t.Fatal(err)
	}
	target := rangeRevision(t, m.ClientURL+"/v1/kv/?prefix=r-sync")
	var records []WatchRecord
	for _, mw := range []MemberWatcher{sse, g} {
		if err := mw.WaitThrough(mctx, target); err != nil {
			t.Fatal(err)
		}
		msgs, st := mw.Drain(target)
		t.Logf("%s: %v", watcherName(1, mw.door()), st)
		if mw == MemberWatcher(g) && st.Connections < 3 {
			t.Errorf("the gRPC watcher opened %d streams, want one per kill and cut at least", st.Connections)
		}
		records = append(records, WatchRecord{Member: 1, Door: mw.door(), Through: target, Msgs: msgs})
	}
	marker := Op{Client: -1, Input: Input{Kind: OpPut, Key: "r-sync", Value: "marker"}, Output: Output{Rev: target}, Status: StatusOK}
	if vs := CheckWatches(append(ops, marker), records); len(vs) > 0 {
		for _, v := range vs[:min(len(vs), 5)] {
			t.Errorf("watch: %v", v)
		}
	}
	if AcknowledgedWrites(ops) < 50 {
		t.Errorf("%d acknowledged writes watched", AcknowledgedWrites(ops))
	}
}

// containsErr says whether an operation's cause names err.
func containsErr(cause string, err error) bool { return strings.Contains(cause, err.Error()) }
