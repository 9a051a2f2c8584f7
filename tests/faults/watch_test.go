package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeWatch is a member's watch endpoint as a script: each request gets
// the answer of its number (from 1). It records what each asked.
type fakeWatch struct {
	t      *testing.T
	script []func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	asks []string // "<path>?<query> Last-Event-ID: <id>"
}

func (f *fakeWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.asks = append(f.asks, fmt.Sprintf("%s?%s Last-Event-ID: %s", r.URL.Path, r.URL.RawQuery, r.Header.Get("Last-Event-ID")))
	n := len(f.asks)
	f.mu.Unlock()
	if n > len(f.script) {
		// Past the script: a stream with nothing to send, until the
		// watcher leaves.
		stream(w, "")
		<-r.Context().Done()
		return
	}
	f.script[n-1](w, r)
}

func (f *fakeWatch) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asks...)
}

// stream answers 200 with the start of an event stream and flushes.
func stream(w http.ResponseWriter, events string) {
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = fmt.Fprint(w, "retry: 1000\n\n"+events)
	w.(http.Flusher).Flush()
}

// sseMsg is the node's SSE event of one revision: puts of key=value.
func sseMsg(rev uint64, kvs ...string) string {
	data := fmt.Sprintf(`{"revision":%d,"events":[`, rev)
	for i := 0; i < len(kvs); i += 2 {
		if i > 0 {
			data += ","
		}
		data += fmt.Sprintf(`{"type":"put","key":%q,"value":%q,"create_revision":%d,"mod_revision":%d,"version":1}`, kvs[i], kvs[i+1], rev, rev)
	}
	return fmt.Sprintf("id: %d\ndata: %s]}\n\n", rev, data)
}

// runWatcher runs w against h until the test ends, and returns Run's
// result channel.
func runWatcher(t *testing.T, w *Watcher, h http.Handler) (*httptest.Server, <-chan error) {
	t.Helper()
	srv := httptest.NewServer(h)
	w.URL = srv.URL
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
		srv.Close()
	})
	return srv, done
}

func waitThrough(t *testing.T, w *Watcher, rev uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WaitThrough(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// The watcher follows a stream through a break (the end of the body in the
// middle of a message, which is not taken), a 503, a progress, an end, and
// resumes each time after the last revision it fully received.
func TestWatcherResumes(t *testing.T) {
	f := &fakeWatch{t: t, script: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			stream(w, sseMsg(5, "r-a", "1")+": a comment\n\n"+
				"id: 7\r\ndata: "+`{"revision":7,"events":[{"type":"put","key":"r-a","value":"2","create_revision":5,"mod_revision":7,"version":2},`+
				`{"type":"delete","key":"r-b","mod_revision":7}]}`+"\r\n\r\n"+
				"id: 8\ndata: "+`{"revision":8,"events":[]}`) // cut: no blank line
		},
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "no leader", http.StatusServiceUnavailable)
		},
		func(w http.ResponseWriter, r *http.Request) {
			stream(w, "event: progress\nid: 9\ndata: {\"revision\":9}\n\n"+
				"event: end\nid: 10\ndata: {\"resume_revision\":11,\"reason\":\"reset\"}\n\n")
		},
		func(w http.ResponseWriter, r *http.Request) {
			stream(w, sseMsg(11, "r-c", "3"))
			<-r.Context().Done()
		},
	}}
	w := &Watcher{Member: 2, Prefix: "r", Start: 5, Backoff: time.Millisecond}
	_, done := runWatcher(t, w, f)
	waitThrough(t, w, 11)

	msgs, st := w.Drain(10)
	want := []WatchMsg{
		{Revision: 5, Conn: 1, Covered: 4, Events: []WatchEvent{{Type: "put", Key: "r-a", Value: "1", CreateRevision: 5, ModRevision: 5, Version: 1}}},
		{Revision: 7, Conn: 1, Covered: 5, Events: []WatchEvent{{Type: "put", Key: "r-a", Value: "2", CreateRevision: 5, ModRevision: 7, Version: 2},
			{Type: "delete", Key: "r-b", ModRevision: 7}}},
	}
	for i := range msgs {
		// When it came: set, and not compared.
		if msgs[i].At.IsZero() {
			t.Errorf("message %v without the time it was received", msgs[i])
		}
		msgs[i].At = time.Time{}
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("drained %v\nwant %v", msgs, want)
	}
	wantStats := WatchStats{Messages: 3, Events: 4, Progress: 1, Connections: 3, Failed: 1, Breaks: 1, Ends: map[string]int{"reset": 1}}
	if !reflect.DeepEqual(st, wantStats) {
		t.Errorf("stats %+v\nwant %+v", st, wantStats)
	}
	if msgs, _ := w.Drain(100); len(msgs) != 1 || msgs[0].Revision != 11 || msgs[0].Conn != 3 || msgs[0].Covered != 10 {
		t.Errorf("the second drain took %+v, want revision 11 of connection 3, after the end's 10", msgs)
	}
	wantAsks := []string{
		"/v1/watch/r?prefix=true&start_revision=5 Last-Event-ID: ",
		"/v1/watch/r?prefix=true&start_revision=5 Last-Event-ID: 7",
		"/v1/watch/r?prefix=true&start_revision=5 Last-Event-ID: 7",
		"/v1/watch/r?prefix=true&start_revision=5 Last-Event-ID: 10",
	}
	if got := f.requests(); !reflect.DeepEqual(got, wantAsks) {
		t.Errorf("requests %q\nwant %q", got, wantAsks)
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

// A 410 stops the watcher: the events between are lost to it, which the
// fault suite must not let pass.
func TestWatcherStopsOnGone(t *testing.T) {
	f := &fakeWatch{t: t, script: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) { stream(w, sseMsg(3, "r-a", "1")) },
		func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"compacted","compact_revision":40}`, http.StatusGone)
		},
	}}
	w := &Watcher{Member: 1, Prefix: "r", Start: 1, Backoff: time.Millisecond}
	_, done := runWatcher(t, w, f)
	if err := <-done; !errors.Is(err, ErrWatchCompacted) {
		t.Fatalf("Run = %v, want ErrWatchCompacted", err)
	}
	if err := w.WaitThrough(context.Background(), 4); !errors.Is(err, ErrWatchCompacted) {
		t.Fatalf("WaitThrough = %v, want ErrWatchCompacted", err)
	}
	if err := w.Err(); !errors.Is(err, ErrWatchCompacted) {
		t.Fatalf("Err = %v", err)
	}
}

// An answer that breaks the contract stops the watcher with
// ErrMalformedAnswer; so does a refused request, without it.
func TestWatcherStopsOnMalformed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    func(http.ResponseWriter, *http.Request)
		malformed bool
	}{
		{"id is not the revision", func(w http.ResponseWriter, r *http.Request) {
			stream(w, "id: 4\ndata: "+`{"revision":5,"events":[{"type":"delete","key":"a","mod_revision":5}]}`+"\n\n")
		}, true},
		{"an event without an id", func(w http.ResponseWriter, r *http.Request) {
			stream(w, "data: "+`{"revision":5,"events":[{"type":"delete","key":"a","mod_revision":5}]}`+"\n\n")
		}, true},
		{"an end whose id is not before its resume", func(w http.ResponseWriter, r *http.Request) {
			stream(w, "event: end\nid: 9\ndata: {\"resume_revision\":9,\"reason\":\"reset\"}\n\n")
		}, true},
		{"a progress whose id is not its revision", func(w http.ResponseWriter, r *http.Request) {
			stream(w, "event: progress\nid: 8\ndata: {\"revision\":9}\n\n")
		}, true},
		{"an unknown event type", func(w http.ResponseWriter, r *http.Request) {
			stream(w, "event: surprise\nid: 8\ndata: {}\n\n")
		}, true},
		{"not an event stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}"))
		}, true},
		{"400", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad start_revision", http.StatusBadRequest)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &Watcher{Member: 1, Prefix: "r", Start: 1, Backoff: time.Millisecond}
			_, done := runWatcher(t, w, &fakeWatch{t: t, script: []func(http.ResponseWriter, *http.Request){tc.answer}})
			err := <-done
			if err == nil || errors.Is(err, ErrMalformedAnswer) != tc.malformed {
				t.Fatalf("Run = %v, want an error, malformed %v", err, tc.malformed)
			}
		})
	}
}

// A stream silent for longer than Idle is cut, and the watcher resumes.
func TestWatcherCutsASilentStream(t *testing.T) {
	f := &fakeWatch{t: t, script: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			stream(w, sseMsg(1, "r-a", "1"))
			<-r.Context().Done()
		},
		func(w http.ResponseWriter, r *http.Request) {
			stream(w, sseMsg(2, "r-a", "2"))
			<-r.Context().Done()
		},
	}}
	w := &Watcher{Member: 1, Prefix: "r", Start: 1, Idle: 50 * time.Millisecond, Backoff: time.Millisecond}
	runWatcher(t, w, f)
	waitThrough(t, w, 2)
	msgs, st := w.Drain(2)
	if len(msgs) != 2 || st.Idle < 1 || st.Breaks != 0 || st.Connections < 2 {
		t.Fatalf("messages %v, stats %+v; want 2 messages, silent streams, none broken", msgs, st)
	}
	if got := f.requests()[1]; got != "/v1/watch/r?prefix=true&start_revision=1 Last-Event-ID: 1" {
		t.Fatalf("the resume asked %q", got)
	}
}

// With a Lifetime the watcher cuts its own streams and resumes after the
// last revision it received: nothing lost, nothing repeated.
func TestWatcherCutsItsOwnStreams(t *testing.T) {
	// The fake serves the revisions 1 to 6, two per stream from the one
	// asked, then holds the stream open: only cuts get the watcher on.
	var h http.HandlerFunc = func(w http.ResponseWriter, r *http.Request) {
		from := uint64(1)
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			last, err := strconv.ParseUint(id, 10, 64)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			from = last + 1
		}
		var events string
		for rev := from; rev <= min(from+1, 6); rev++ {
			events += sseMsg(rev, "r-a", strconv.FormatUint(rev, 10))
		}
		stream(w, events)
		<-r.Context().Done()
	}
	w := &Watcher{Member: 1, Prefix: "r", Start: 1, Backoff: time.Millisecond,
		Lifetime: func() time.Duration { return 10 * time.Millisecond }}
	runWatcher(t, w, h)
	waitThrough(t, w, 6)
	msgs, st := w.Drain(6)
	var revs []uint64
	for _, m := range msgs {
		revs = append(revs, m.Revision)
	}
	if !reflect.DeepEqual(revs, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("revisions %v, want 1 to 6 once each", revs)
	}
	if st.Cuts < 2 || st.Breaks != 0 || st.Idle != 0 {
		t.Fatalf("stats %+v: want 2 cuts or more, no breaks", st)
	}
}

func TestWatcherNeedsAStart(t *testing.T) {
	if err := (&Watcher{URL: "http://127.0.0.1:1"}).Run(context.Background()); err == nil {
		t.Fatal("Run without a Start: no error")
	}
}

// A cut of an attempt that the member has not answered (a paused member)
// is a failed attempt, not a stream cut.
func TestWatcherCutWhileWaiting(t *testing.T) {
	f := &fakeWatch{t: t, script: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		func(w http.ResponseWriter, r *http.Request) {
			stream(w, sseMsg(1, "r-a", "1"))
			<-r.Context().Done()
		},
	}}
	w := &Watcher{Member: 1, Prefix: "r", Start: 1, Backoff: time.Millisecond,
		Lifetime: func() time.Duration { return 10 * time.Millisecond }}
	runWatcher(t, w, f)
	waitThrough(t, w, 1)
	if _, st := w.Drain(1); st.Failed != 1 || st.Connections < 1 {
		t.Fatalf("stats %+v: want 1 failed attempt, then a stream", st)
	}
}
