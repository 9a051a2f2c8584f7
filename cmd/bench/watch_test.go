package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/raftkv/node/internal/sse"
)

// newTestWatcher is a watcher of prefix "p-" over writers' ack logs.
func newTestWatcher(writers int) (*watcher, *watchRun) {
	run := &watchRun{epoch: time.Now(), prefix: []byte("p-"), allSettled: make(chan struct{}),
		watchStats: watchStats{delay: newHistogram(), ended: map[string]uint64{}}}
	for range writers {
		run.logs = append(run.logs, &ackLog{epoch: run.epoch})
	}
	return &watcher{run: run}, run
}

// TestWatcherDeliveries: what a watcher makes of events before and after
// their acknowledgement, repeated, at a wrong revision, of other keys.
func TestWatcherDeliveries(t *testing.T) {
	w, run := newTestWatcher(2)
	for writer, n := range []uint64{3, 2} {
		run.logs[writer].issued.Store(n)
	}
	t0 := run.epoch.Add(time.Second)
	run.logs[0].record(0, 10, t0) // acknowledged before its event
	run.logs[1].record(0, 12, t0) // event at a revision other than its answer's
	ev := func(rev int, data string) sse.Event {
		return sse.Event{Data: []byte(data), ID: []byte(strconv.Itoa(rev))}
	}
	recv := int64(time.Second + 5*time.Millisecond)
	w.onChange(ev(10, `{"revision":10,"events":[{"type":"put","key":"p-0-0","value":"v","mod_revision":10}]}`), recv)
	w.onChange(ev(11, `{"events":[{"key":"p-0-1","type":"put"},{"type":"delete","key":"p-0-2"},{"type":"put","key":"q-0-0"}],"revision":11}`), recv)
	w.onChange(ev(11, `{"revision":11,"events":[{"type":"put","key":"p-0-1"}]}`), recv) // again
	w.onChange(ev(13, `{"revision":13,"events":[{"type":"put","key":"p-1-0"},{"type":"put","key":"p-1-7"},{"type":"put","key_b64":"AA=="}]}`), recv)
	w.onChange(ev(14, `{"revision":14,"events":[`), recv)                                      // cut
	w.onChange(sse.Event{Data: []byte(`{"revision":15,"events":[]}`), ID: []byte("16")}, recv) // id is not the revision
	run.logs[0].record(1, 11, t0.Add(time.Hour))                                               // acknowledged after its event
	w.flushDelays()

	if w.timed != 2 || w.n[evDup] != 1 || w.n[evDisorder] != 1 || w.n[evWrongRev] != 1 || w.n[evBadData] != 2 {
		t.Errorf("timed %d, dup %d, disorder %d, wrong revision %d, bad data %d; want 2, 1, 1, 1, 2",
			w.timed, w.n[evDup], w.n[evDisorder], w.n[evWrongRev], w.n[evBadData])
	}
	// Foreign: the delete, q-0-0, p-1-7 (never issued) and the base64 key.
	if w.n[evForeign] != 4 || w.lastRev.Load() != 13 {
		t.Errorf("foreign %d, last revision %d", w.n[evForeign], w.lastRev.Load())
	}
	run.watchers = []*watcher{w}
	run.tally(3)
	ws := &run.watchStats
	// Acknowledged: 0-0, 0-1 and 1-0, all delivered; 0-2 was issued, not
	// acknowledged, and its event was a delete, so not a delivery.
	if ws.delivered != 3 || ws.missed != 0 || ws.unacked != 0 || ws.early != 1 {
		t.Errorf("delivered %d, missed %d, unacked %d, early %d; want 3, 0, 0, 1", ws.delivered, ws.missed, ws.unacked, ws.early)
	}
	if h := ws.delay; h.count() != 3 || h.minimum() != 0 || h.maximum() < 5*time.Millisecond || h.maximum() > 6*time.Millisecond {
		t.Errorf("delays: %d, min %v, max %v; want 3 of 0 to 5ms", h.count(), h.minimum(), h.maximum())
	}

	// A second watcher that saw only 0-0 missed two acknowledged writes.
	w2 := &watcher{run: run}
	w2.onChange(ev(10, `{"revision":10,"events":[{"type":"put","key":"p-0-0"}]}`), recv)
	w2.onChange(ev(12, `{"revision":12,"events":[{"type":"put","key":"p-0-2"}]}`), recv)
	w2.ended = "dropped"
	run.watchStats = watchStats{delay: newHistogram(), ended: map[string]uint64{}}
	run.watchers = []*watcher{w2}
	run.tally(3)
	if ws.delivered != 1 || ws.missed != 2 || ws.missedOpen != 0 || ws.unacked != 1 || ws.ended["dropped"] != 1 {
		t.Errorf("%+v", ws)
	}
}

func watchConfig(total uint64, watchers int, endpoints ...string) config {
	cfg := testConfig(cmdWatch, total, endpoints...)
	cfg.watchers = watchers
	cfg.watchGrace = 30 * time.Second // ends as soon as every watcher caught up
	return cfg
}

// TestWatch: every watcher delivers every acknowledged write, each
// delivery timed, and the run ends once they all have the last one.
func TestWatch(t *testing.T) {
	node := newFakeNode(t, nil)
	a, b := node.url, strings.Replace(node.url, "127.0.0.1", "localhost", 1)
	res := mustRun(t, watchConfig(200, 10, a, b))
	ws := res.watch
	_, acked, _, _ := node.counts()
	if res.writes.ok() != 200 || acked != 200 || ws.acked != 200 || ws.opened != 10 {
		t.Fatalf("writes %d (node %d), watch %+v", res.writes.ok(), acked, ws)
	}
	if ws.delivered != 2000 || ws.missed != 0 || ws.endedEarly() != 0 || ws.n[evDup]+ws.n[evDisorder]+ws.n[evWrongRev]+ws.n[evBadData]+ws.n[evForeign] != 0 {
		t.Errorf("%+v", ws)
	}
	if ws.delay.count() != 2000 || !ws.settled {
		t.Errorf("%d delays, settled %v", ws.delay.count(), ws.settled)
	}
	if n, q := node.watchCounts(); n != 10 || q["prefix=true"] != 10 {
		t.Errorf("%d watches opened, queries %v", n, q)
	}
	var buf bytes.Buffer
	if err := writeText(&buf, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Ops:         200 acknowledged of 200 requests\n",
		"  Watchers:    10 opened of 10\n",
		"  Deliveries:  2000 of 2000 (200 acknowledged writes × 10 watchers)",
		"  Missed:      0 (0 on streams open to the end)\n",
		"  Ended early: 0\n",
		"  Delay (ms): min ",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestWatchMisbehaving: streams that end, drop, lose, repeat or split
// events are told apart, and every loss is counted.
func TestWatchMisbehaving(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.progressEvery = 25
		f.watchHook = func(watcher, n int) watchAction {
			switch {
			case watcher == 0 && n == 10:
				return watchEnd
			case watcher == 1 && n == 20:
				return watchDrop
			case watcher == 2 && n == 30:
				return watchSkip
			case watcher == 3 && n == 40:
				return watchTwice
			case watcher == 4:
				return watchSplit
			}
			return watchSend
		}
	})
	cfg := watchConfig(200, 6, node.url)
	res := mustRun(t, cfg)
	ws := res.watch
	if ws.ended["overflow"] != 1 || ws.ended["dropped"] != 1 || ws.endedEarly() != 2 {
		t.Errorf("ended %v", ws.ended)
	}
	// Watcher 0 delivered 10, 1 delivered 20, 2 all but one.
	if ws.missed != 190+180+1 || ws.missedOpen != 1 || ws.delivered != 1200-371 || ws.delay.count() != ws.delivered {
		t.Errorf("missed %d (%d on open streams), delivered %d, delays %d", ws.missed, ws.missedOpen, ws.delivered, ws.delay.count())
	}
	if ws.n[evDup] != 1 || ws.n[evDisorder] != 1 || ws.n[evBadData] != 0 || ws.n[evProgress] == 0 || !ws.settled {
		t.Errorf("%+v", ws)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	var rep jsonReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil || rep.Watch == nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if w := rep.Watch; w.Missed != 371 || w.EndedEarly != 2 || w.EndedBy["overflow"] != 1 || w.ExpectedDeliveries != 1200 || w.Duplicates != 1 {
		t.Errorf("JSON watch %+v", w)
	}
}

// TestWatchGraceRunsOut: a watcher that never delivers keeps the run
// waiting for --watch-grace only, and its losses are counted.
func TestWatchGraceRunsOut(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.watchHook = func(watcher, n int) watchAction {
			if watcher == 1 {
				return watchSkip
			}
			return watchSend
		}
	})
	cfg := watchConfig(50, 2, node.url)
	cfg.watchGrace = 100 * time.Millisecond
	res := mustRun(t, cfg)
	if ws := res.watch; ws.settled || ws.missedOpen != 50 || ws.delivered != 50 || ws.caughtUp < cfg.watchGrace {
		t.Errorf("%+v", ws)
	}
}

// TestWatchNotServed: a node without watches fails the run, before any
// write.
func TestWatchNotServed(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.noWatch = true })
	_, err := runBench(context.Background(), watchConfig(10, 3, node.url), zap.NewNop(), nil)
	if !errors.Is(err, errNoWatch) || !strings.Contains(err.Error(), "404") {
		t.Errorf("err = %v, want errNoWatch with the 404", err)
	}
	if puts, _, _, _ := node.counts(); puts != 0 {
		t.Errorf("%d PUTs without a watch", puts)
	}
	var stderr bytes.Buffer
	args := []string{"watch", "--endpoints", node.url, "--total", "5", "--watchers", "2"}
	if code := runMain(context.Background(), args, io.Discard, &stderr, nil, zap.NewNop()); code != 1 {
		t.Errorf("exit %d, want 1: %s", code, stderr.String())
	}
}

// TestJSONScan: the cursor reads what it is asked and refuses the rest.
func TestJSONScan(t *testing.T) {
	for body, want := range map[string]uint64{
		`{"index":5,"revision":7}`:                                   7,
		` { "error" : "\"revision\":9" , "revision" : 8 } ` + "\n":   8,
		`{"nested":{"revision":1},"list":[1,{"a":[]}],"revision":3}`: 3,
	} {
		if got, ok := topUint([]byte(body), "revision"); !ok || got != want {
			t.Errorf("%s: %d, %v; want %d", body, got, ok, want)
		}
	}
	for _, body := range []string{`{"index":5}`, `{"revision":-1}`, `{"revision":"7"}`, `[`, ``, `{"revision":99999999999999999999}`} {
		if got, ok := topUint([]byte(body), "revision"); ok {
			t.Errorf("%s: %d, want no revision", body, got)
		}
	}
	if r := endReason([]byte(`{"resume_revision":3,"reason":"reset"}`)); r != "reset" {
		t.Errorf("reason %q", r)
	}
	if r := endReason([]byte(`{}`)); r != "end" {
		t.Errorf("reason %q", r)
	}
}

// BenchmarkWatcherEvent is a watcher's cost per received revision of 4
// events, from the SSE bytes to the recorded delays; it should not
// allocate.
//
//	go test -run '^$' -bench WatcherEvent ./cmd/bench/
func BenchmarkWatcherEvent(b *testing.B) {
	w, run := newTestWatcher(4)
	var stream bytes.Buffer
	for i := range 1024 {
		stream.WriteString("id: " + strconv.Itoa(i+1) + "\ndata: {\"revision\":" + strconv.Itoa(i+1) + ",\"events\":[")
		for c := range 4 {
			if c > 0 {
				stream.WriteByte(',')
			}
			stream.WriteString(`{"type":"put","key":"p-` + strconv.Itoa(c) + "-" + strconv.Itoa(i) +
				`","value":"` + strings.Repeat("v", 100) + `","create_revision":1,"mod_revision":1,"version":1}`)
		}
		stream.WriteString("]}\n\n")
	}
	for _, l := range run.logs {
		l.issued.Store(1024)
		for seq := range uint64(1024) {
			l.record(seq, seq+1, run.epoch)
		}
	}
	data := stream.Bytes()
	r := bytes.NewReader(data)
	br := bufio.NewReaderSize(r, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(data) / 1024))
	sr := sse.NewReader(br)
	b.ResetTimer()
	for i := range b.N {
		if i%1024 == 0 {
			r.Reset(data)
			br.Reset(r)
			for _, s := range w.seen {
				clear(s)
			}
			w.lastRev.Store(0)
		}
		ev, err := sr.Next()
		if err != nil {
			b.Fatal(err)
		}
		w.onChange(ev, int64(time.Millisecond))
	}
	b.StopTimer()
	if w.n[evBadData]+w.n[evForeign]+w.n[evDup] != 0 {
		b.Fatalf("bad %d, foreign %d, dup %d", w.n[evBadData], w.n[evForeign], w.n[evDup])
	}
}
