package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/watch"
)

// watchFixture serves the client API with a real watch hub, fed by a
// watchtest.Store that plays the kv actor.
type watchFixture struct {
	system  *actor.ActorSystem
	hub     *actor.PID
	store   *watchtest.Store
	m       *metrics.Node
	handler http.Handler
	url     string
	client  *http.Client
}

func newWatchFixture(t *testing.T, cfg watch.HubConfig) *watchFixture {
	t.Helper()
	return newWatchFixtureWith(t, cfg, nil)
}

// newWatchFixtureWith is newWatchFixture with the handler reading history,
// when not nil, instead of the store's.
func newWatchFixtureWith(t *testing.T, cfg watch.HubConfig, history watch.History) *watchFixture {
	t.Helper()
	verifyNoLeaks(t)
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	t.Cleanup(system.Shutdown)
	f := &watchFixture{system: system, m: metrics.New(prometheus.NewRegistry())}
	f.store = watchtest.NewStore(system.Root, nil)
	cfg.Metrics = f.m
	hub := watch.NewHub(cfg)
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return hub }), "watch")
	if err != nil {
		t.Fatal(err)
	}
	f.hub = pid
	f.store.SetHub(pid)
	if history == nil {
		history = f.store
	}
	f.handler = httpapi.NewHandler(httpapi.HandlerConfig{Root: system.Root, Watch: pid, History: history, Format: apply.FormatNative})
	srv := httptest.NewServer(f.handler)
	// As the node stops: the watches end first, so that closing the
	// server does not wait on open streams.
	t.Cleanup(func() {
		f.stopWatches(t)
		srv.Close()
	})
	f.url, f.client = srv.URL, srv.Client()
	return f
}

func (f *watchFixture) stopWatches(t *testing.T) {
	t.Helper()
	if _, err := f.system.Root.RequestFuture(f.hub, watch.StopWatches{}, 5*time.Second).Result(); err != nil {
		t.Errorf("stop watches: %v", err)
	}
}

// commitN applies n revisions, key k<i mod 2>, and commits them.
func (f *watchFixture) commitN(n int) {
	for i := range n {
		f.store.Put(fmt.Sprintf("k%d", i%2), fmt.Sprint(i))
	}
	f.store.Commit()
}

// sse is one Server-Sent Event as a client parses it.
type sse struct {
	event, id, data, retry string
}

// sseStream reads events off a watch response.
type sseStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

func (f *watchFixture) get(t *testing.T, path string, header map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

func (s *sseStream) body(t *testing.T) string {
	t.Helper()
	b, err := io.ReadAll(s.resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// next reads one event; every line must be a field this API sends.
func (s *sseStream) next(t *testing.T) sse {
	t.Helper()
	var e sse
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (event so far %+v)", err, e)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return e
		}
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("line %q is not a field", line)
		}
		switch name {
		case "event":
			e.event = value
		case "id":
			e.id = value
		case "data":
			e.data = value
		case "retry":
			e.retry = value
		default:
			t.Fatalf("unexpected field %q", line)
		}
	}
}

// eventIDs reads until n data events (progress marks skipped), returning
// their ids.
func (s *sseStream) eventIDs(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for len(ids) < n {
		e := s.next(t)
		switch e.event {
		case "":
			ids = append(ids, e.id)
		case "progress":
		default:
			t.Fatalf("event %+v after %v", e, ids)
		}
	}
	return ids
}

// The stream's framing: headers, the retry line flushed at once, then one
// event per revision, id and data.
func TestWatchSSEFraming(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{Revision: 0})
	f.store.Put("a", "1")
	f.store.Put("b", "2")
	s := f.get(t, "/v1/watch/a", nil)
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", s.resp.StatusCode, s.body(t))
	}
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Raftkv-Revision":   "2",
	} {
		if got := s.resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if e := s.next(t); e != (sse{retry: "1000"}) {
		t.Fatalf("first event %+v, want the retry", e)
	}
	f.store.Put("b", "3")
	f.store.Apply([]watchtest.Op{watchtest.Put("a", "x\ny"), watchtest.Put("b", "4")})
	f.store.Delete("a")
	want := []sse{
		{id: "4", data: `{"revision":4,"events":[{"type":"put","key":"a","value":"x\ny","create_revision":1,"mod_revision":4,"version":2}]}`},
		{id: "5", data: `{"revision":5,"events":[{"type":"delete","key":"a","mod_revision":5}]}`},
	}
	for _, w := range want {
		if e := s.next(t); e != w {
			t.Fatalf("got %+v\nwant %+v", e, w)
		}
	}
	// Data is JSON that a client decodes.
	var body struct {
		Revision uint64 `json:"revision"`
	}
	if err := json.Unmarshal([]byte(want[0].data), &body); err != nil || body.Revision != 4 {
		t.Fatalf("data does not decode: %v", err)
	}
}

// Keys are percent-decoded as under /v1/kv/; prefix=true watches the keys
// under one, and every key with an empty one.
func TestWatchKeysAndPrefixes(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{})
	spaced := f.get(t, "/v1/watch/a%20b", nil)
	under := f.get(t, "/v1/watch/cfg/?prefix=true", nil)
	all := f.get(t, "/v1/watch/?prefix=true", nil)
	for _, s := range []*sseStream{spaced, under, all} {
		s.next(t) // retry
	}
	f.store.Put("a b", "1")
	f.store.Put("cfg/x", "2")
	f.store.Put("cfgx", "3")
	if got := spaced.eventIDs(t, 1); got[0] != "1" {
		t.Errorf("a b: %v", got)
	}
	if got := under.eventIDs(t, 1); got[0] != "2" {
		t.Errorf("cfg/: %v", got)
	}
	if got := all.eventIDs(t, 3); strings.Join(got, " ") != "1 2 3" {
		t.Errorf("every key: %v", got)
	}
}

// start_revision replays the history first; Last-Event-ID wins over it and
// resumes after its revision.
func TestWatchStartAndLastEventID(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{})
	f.commitN(6)
	f.store.Put("k0", "tail") // 7, not committed

	s := f.get(t, "/v1/watch/k?prefix=true&start_revision=2", nil)
	s.next(t)
	if got := strings.Join(s.eventIDs(t, 6), " "); got != "2 3 4 5 6 7" {
		t.Errorf("start_revision=2: %s", got)
	}
	if got := s.resp.Header.Get("Raftkv-Revision"); got != "7" {
		t.Errorf("Raftkv-Revision %s, want 7", got)
	}

	r := f.get(t, "/v1/watch/k?prefix=true&start_revision=2", map[string]string{"Last-Event-ID": "5"})
	r.next(t)
	if got := strings.Join(r.eventIDs(t, 2), " "); got != "6 7" {
		t.Errorf("Last-Event-ID 5: %s", got)
	}
	f.store.Put("k1", "live")
	if got := r.eventIDs(t, 1); got[0] != "8" {
		t.Errorf("live after the catch-up: %v", got)
	}
}

// start_revision=0 starts after the current revision, as no
// start_revision does and as in etcd; Last-Event-ID still wins over it.
func TestWatchStartRevisionZeroIsNow(t *testing.T) {
	for _, c := range []struct {
		name   string
		path   string
		header map[string]string
		want   string // the ids of the events, the put at 8 last
	}{
		{"no start", "/v1/watch/k?prefix=true", nil, "8"},
		{"start 0", "/v1/watch/k?prefix=true&start_revision=0", nil, "8"},
		{"start 0 with prev_kv", "/v1/watch/k?start_revision=0&prefix=true&prev_kv=true", nil, "8"},
		{"start 1, for contrast", "/v1/watch/k?prefix=true&start_revision=1", nil, "1 2 3 4 5 6 7 8"},
		{"Last-Event-ID over start 0", "/v1/watch/k?prefix=true&start_revision=0", map[string]string{"Last-Event-ID": "4"}, "5 6 7 8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newWatchFixture(t, watch.HubConfig{})
			f.commitN(6)
			f.store.Put("k0", "tail") // 7, not committed
			s := f.get(t, c.path, c.header)
			if s.resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", s.resp.StatusCode, s.body(t))
			}
			if got := s.resp.Header.Get("Raftkv-Revision"); got != "7" {
				t.Errorf("Raftkv-Revision %s, want 7", got)
			}
			s.next(t) // retry
			// The stream is open: the put at 8 comes after its start.
			f.store.Put("k1", "live")
			if got := strings.Join(s.eventIDs(t, strings.Count(c.want, " ")+1), " "); got != c.want {
				t.Errorf("event ids %s, want %s", got, c.want)
			}
		})
	}
}

// eventsHistory is a db history holding events, every one committed. It
// passes them all in one read: the tests' are few.
type eventsHistory []messages.Event

func (h eventsHistory) ReadEvents(from uint64, _ int, fn func(messages.Event)) (uint64, error) {
	through := from - 1
	for _, e := range h {
		if e.Revision() >= from {
			fn(e)
			through = e.Revision()
		}
	}
	if n := len(h); n > 0 {
		through = max(through, h[n-1].Revision())
	}
	return through, nil
}

// prev_kv=true gives each event the key's record before it, from the
// history as live, in the shape of a range read's key (a value that is not
// UTF-8 as value_b64); a put that created the key has none, and a stream
// without prev_kv=true gets none.
func TestWatchPrevKV(t *testing.T) {
	kv := func(key, value string, create, mod, version uint64) *messages.KV {
		return &messages.KV{Key: key, Value: []byte(value), CreateRevision: create, ModRevision: mod, Version: version}
	}
	put := func(cur, prev *messages.KV) messages.Event {
		return messages.Event{Type: messages.EventPut, KV: *cur, Prev: prev}
	}
	committed := eventsHistory{
		put(kv("a", "1", 1, 1, 1), nil),
		put(kv("a", "\xff\xfe", 1, 2, 2), kv("a", "1", 1, 1, 1)),
		put(kv("b", "x", 3, 3, 1), nil),
	}
	live := []messages.Event{
		{Type: messages.EventDelete, KV: messages.KV{Key: "a", ModRevision: 4}, Prev: kv("a", "\xff\xfe", 1, 2, 2)},
		put(kv("b", "y", 3, 4, 2), kv("b", "x", 3, 3, 1)),
	}
	f := newWatchFixtureWith(t, watch.HubConfig{}, committed)
	// As the kv actor tells the hub: the events, then their commit.
	f.system.Root.Send(f.hub, messages.WatchEvents{Events: committed, Revision: 3})
	f.system.Root.Send(f.hub, messages.WatchCommitted{Revision: 3})

	const (
		a1 = `{"revision":1,"events":[{"type":"put","key":"a","value":"1","create_revision":1,"mod_revision":1,"version":1}]}`
		a2 = `{"revision":2,"events":[{"type":"put","key":"a","value_b64":"//4=","create_revision":1,"mod_revision":2,"version":2` +
			`,"prev_kv":{"key":"a","value":"1","create_revision":1,"mod_revision":1,"version":1}}]}`
		a2Plain = `{"revision":2,"events":[{"type":"put","key":"a","value_b64":"//4=","create_revision":1,"mod_revision":2,"version":2}]}`
		b3      = `{"revision":3,"events":[{"type":"put","key":"b","value":"x","create_revision":3,"mod_revision":3,"version":1}]}`
		delA4   = `{"type":"delete","key":"a","mod_revision":4,"prev_kv":{"key":"a","value_b64":"//4=","create_revision":1,"mod_revision":2,"version":2}}`
		putB4   = `{"type":"put","key":"b","value":"y","create_revision":3,"mod_revision":4,"version":2,"prev_kv":{"key":"b","value":"x","create_revision":3,"mod_revision":3,"version":1}}`
		a4      = `{"revision":4,"events":[` + delA4 + `]}`
		a4Plain = `{"revision":4,"events":[{"type":"delete","key":"a","mod_revision":4}]}`
		all4    = `{"revision":4,"events":[` + delA4 + `,` + putB4 + `]}`
	)
	cases := []struct {
		path string
		want []string
	}{
		{"/v1/watch/a?start_revision=1&prev_kv=true", []string{a1, a2, a4}},
		{"/v1/watch/?prefix=true&prev_kv=true&start_revision=1", []string{a1, a2, b3, all4}},
		{"/v1/watch/a?prev_kv=true", []string{a4}},
		{"/v1/watch/a?start_revision=1&prev_kv=false", []string{a1, a2Plain, a4Plain}},
		{"/v1/watch/a?start_revision=1", []string{a1, a2Plain, a4Plain}},
	}
	streams := make([]*sseStream, len(cases))
	for i, c := range cases {
		streams[i] = f.get(t, c.path, nil)
		if streams[i].resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", c.path, streams[i].resp.StatusCode, streams[i].body(t))
		}
		streams[i].next(t) // retry
	}
	f.system.Root.Send(f.hub, messages.WatchEvents{Events: live, Revision: 4})
	for i, c := range cases {
		var got []string
		for len(got) < len(c.want) {
			if e := streams[i].next(t); e.event == "" {
				got = append(got, e.data)
			}
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:\n got %s\nwant %s", c.path, strings.Join(got, "\n     "), strings.Join(c.want, "\n     "))
		}
	}

	// A client decodes prev_kv as it decodes a range read's key.
	var body struct {
		Events []struct {
			PrevKV *struct {
				Key      string `json:"key"`
				ValueB64 []byte `json:"value_b64"`
				Version  uint64 `json:"version"`
			} `json:"prev_kv"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(all4), &body); err != nil {
		t.Fatal(err)
	}
	if p := body.Events[0].PrevKV; p == nil || p.Key != "a" || string(p.ValueB64) != "\xff\xfe" || p.Version != 2 {
		t.Fatalf("prev_kv of the delete decodes as %+v", p)
	}
}

// Bad requests are refused in one line, before a stream opens.
func TestWatchRefusals(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{MaxWatchers: 1})
	f.commitN(10)
	f.store.Compact(4)
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		contains           string
	}{
		{"bad prefix", "GET", "/v1/watch/a?prefix=yes", nil, 400, "prefix"},
		{"empty prefix value", "GET", "/v1/watch/a?prefix=", nil, 400, "prefix"},
		{"bad start", "GET", "/v1/watch/a?start_revision=x", nil, 400, "start_revision"},
		{"negative start", "GET", "/v1/watch/a?start_revision=-1", nil, 400, "start_revision"},
		{"empty start", "GET", "/v1/watch/a?start_revision=", nil, 400, "start_revision"},
		{"start past uint64", "GET", "/v1/watch/a?start_revision=18446744073709551616", nil, 400, "start_revision"},
		{"bad prev_kv", "GET", "/v1/watch/a?prev_kv=yes", nil, 400, "prev_kv"},
		{"numeric prev_kv", "GET", "/v1/watch/a?prev_kv=1", nil, 400, "prev_kv"},
		{"empty prev_kv", "GET", "/v1/watch/a?prev_kv=", nil, 400, "prev_kv"},
		{"unknown parameter", "GET", "/v1/watch/a?prev_kvs=true", nil, 400, `unknown parameter "prev_kvs"`},
		{"unknown parameter beside known ones", "GET", "/v1/watch/a?prefix=true&start_revision=0&limit=3", nil, 400, `unknown parameter "limit"`},
		{"several unknown parameters", "GET", "/v1/watch/a?zz=1&aa=2", nil, 400, `unknown parameter "aa"`},
		{"unknown parameter without a value", "GET", "/v1/watch/a?progress_notify", nil, 400, `unknown parameter "progress_notify"`},
		{"bad last event id", "GET", "/v1/watch/a?start_revision=5", map[string]string{"Last-Event-ID": "five"}, 400, "Last-Event-ID"},
		{"last event id at the top", "GET", "/v1/watch/a", map[string]string{"Last-Event-ID": "18446744073709551615"}, 400, "Last-Event-ID"},
		{"no key", "GET", "/v1/watch/", nil, 400, "empty key"},
		{"malformed query", "GET", "/v1/watch/a?prefix=%zz", nil, 400, "query"},
		{"post", "POST", "/v1/watch/a", nil, 405, "GET"},
		{"delete", "DELETE", "/v1/watch/a", nil, 405, "GET"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.url+c.path, nil)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			msg := checkErrorJSON(t, resp, string(b))
			if resp.StatusCode != c.status || !strings.Contains(msg, c.contains) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, msg, c.status, c.contains)
			}
			if c.status == 405 && resp.Header.Get("Allow") != "GET" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}

	// Below the history: 410 with where it starts, as JSON; Last-Event-ID
	// counts as a start.
	for _, h := range []map[string]string{nil, {"Last-Event-ID": "3"}} {
		path := "/v1/watch/a?start_revision=4"
		if h != nil {
			path = "/v1/watch/a"
		}
		s := f.get(t, path, h)
		if s.resp.StatusCode != http.StatusGone {
			t.Fatalf("%s %v: status %d", path, h, s.resp.StatusCode)
		}
		var body errorAnswer
		if err := json.NewDecoder(s.resp.Body).Decode(&body); err != nil || body.CompactRevision == nil || *body.CompactRevision != 4 || body.Error.Message == "" {
			t.Fatalf("410 body: %+v, %v", body, err)
		}
	}

	// One watcher at most here: the second is 503, to retry later.
	first := f.get(t, "/v1/watch/a", nil)
	first.next(t)
	second := f.get(t, "/v1/watch/b", nil)
	if second.resp.StatusCode != http.StatusServiceUnavailable || second.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second watch: %d, Retry-After %q", second.resp.StatusCode, second.resp.Header.Get("Retry-After"))
	}

	// A handler without a hub says so.
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.HandlerConfig{Root: f.system.Root, Format: apply.FormatNative}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/v1/watch/a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "watch not configured") {
		t.Fatalf("no hub: %d %q", resp.StatusCode, b)
	}
}

// The end of a stream says why and where to resume, with the id before it
// so that an EventSource resumes there by itself; progress marks carry the
// revision.
func TestWatchEndAndProgress(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{Revision: 0, ProgressInterval: 5 * time.Millisecond})
	s := f.get(t, "/v1/watch/a", nil)
	s.next(t)
	f.store.Put("a", "1")
	f.store.Put("b", "2")
	for {
		e := s.next(t)
		if e.event == "progress" && e.id == "2" {
			if e.data != `{"revision":2}` {
				t.Fatalf("progress %+v", e)
			}
			break
		}
	}
	f.store.Reset(10, 8)
	for {
		e := s.next(t)
		if e.event == "end" {
			if want := (sse{event: "end", id: "2", data: `{"resume_revision":3,"reason":"reset"}`}); e != want {
				t.Fatalf("end %+v, want %+v", e, want)
			}
			break
		}
		if e.event != "progress" {
			t.Fatalf("before the end: %+v", e)
		}
	}
	if _, err := s.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the end: %v, want EOF", err)
	}
}

// A client that leaves closes its watcher: nothing stays behind.
func TestWatchDisconnectCleansUp(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{})
	s := f.get(t, "/v1/watch/a", nil)
	s.next(t)
	waitGauge(t, f.m.Watch.Watchers, 1)
	s.close()
	waitGauge(t, f.m.Watch.Watchers, 0)
	f.store.Put("a", "nobody listens")
	again := f.get(t, "/v1/watch/a?start_revision=1", nil)
	again.next(t)
	if got := again.eventIDs(t, 1); got[0] != "1" {
		t.Fatalf("%v", got)
	}
}

// Open streams do not hold a graceful shutdown up once the watches are
// stopped, as the node does before it shuts its client API down.
func TestWatchStopLetsShutdownFinish(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.handler}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/watch/a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: func() {}}
	r.next(t)

	f.stopWatches(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a stream open: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	if e := r.next(t); e.event != "end" || !strings.Contains(e.data, `"reason":"stopping"`) {
		t.Fatalf("last event %+v", e)
	}
	http.DefaultClient.CloseIdleConnections()
}

// Everything queued while the stream was writing goes out in one write.
func TestWatchWritesWhatIsQueuedAtOnce(t *testing.T) {
	f := newWatchFixture(t, watch.HubConfig{})
	w := newGatedWriter()
	req := httptest.NewRequest(http.MethodGet, "/v1/watch/k?prefix=true", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.handler.ServeHTTP(w, req.WithContext(ctx))
	}()
	<-w.writing // the retry line, held
	f.commitN(100)
	waitQueued(t, f) // the hub handled all 100 while the stream waited
	close(w.release)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(w.String(), "\nid: ") < 100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if n := strings.Count(w.String(), "data: "); n != 100 {
		t.Fatalf("%d events written, want 100", n)
	}
	if w.writes != 2 || w.flushes != 2 {
		t.Fatalf("%d writes and %d flushes for the retry line and 100 events, want 2 and 2", w.writes, w.flushes)
	}
}

// waitQueued returns once the hub has handled what the store sent: a
// watch opened now is answered in mailbox order.
func waitQueued(t *testing.T, f *watchFixture) {
	t.Helper()
	s, err := watch.Open(watch.StreamConfig{Root: f.system.Root, Hub: f.hub, Filter: watch.Filter{Key: "barrier"}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// gatedWriter is a ResponseWriter whose first write waits for release.
type gatedWriter struct {
	mu      sync.Mutex
	header  http.Header
	buf     strings.Builder
	writes  int
	flushes int
	writing chan struct{}
	release chan struct{}
}

func newGatedWriter() *gatedWriter {
	return &gatedWriter{header: http.Header{}, writing: make(chan struct{}), release: make(chan struct{})}
}

func (w *gatedWriter) Header() http.Header { return w.header }
func (w *gatedWriter) WriteHeader(int)     {}

func (w *gatedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	first := w.writes == 1
	w.buf.Write(b)
	w.mu.Unlock()
	if first {
		close(w.writing)
		<-w.release
	}
	return len(b), nil
}

func (w *gatedWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushes++
}

func (w *gatedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func waitGauge(t *testing.T, g prometheus.Gauge, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(g) != want {
		if time.Now().After(deadline) {
			t.Fatalf("gauge = %v, want %v", testutil.ToFloat64(g), want)
		}
		time.Sleep(time.Millisecond)
	}
}
