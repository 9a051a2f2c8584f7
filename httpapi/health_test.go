package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/internal/testcluster"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

// member scripts the answers of a member's actors to the health checks; a
// nil answer is silence, which the check's bound ends.
type member struct {
	status any // to messages.StatusRequest
	store  any // to messages.StoreStatusRequest
	read   any // to the checks' linearizable read (messages.Get)
}

var (
	healthy   = member{status: messages.Status{ID: 1, Leader: 2}, store: messages.StoreStatus{Used: 10}, read: messages.Result{}}
	checkWait = 100 * time.Millisecond // the bound of the checks below (HandlerConfig.Timeout)
)

// with returns m changed by f.
func (m member) with(f func(*member)) member { f(&m); return m }

// healthFixture serves the client API and the metrics listener's handler
// over actors scripted by m, and records what each actor was asked.
type healthFixture struct {
	client, metrics string
	mu              sync.Mutex
	asked           []any
}

func newHealthFixture(t *testing.T, m member) *healthFixture {
	t.Helper()
	system := quietSystem(t)
	f := &healthFixture{}
	record := func(msg any) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.asked = append(f.asked, msg)
	}
	raft := scriptedActor(system, func(msg any) any {
		record(msg)
		if _, ok := msg.(messages.StatusRequest); ok {
			return m.status
		}
		return nil
	})
	kv := scriptedActor(system, func(msg any) any {
		record(msg)
		switch msg.(type) {
		case messages.StoreStatusRequest:
			return m.store
		case messages.Get:
			return m.read
		}
		return nil
	})
	api := httptest.NewServer(httpapi.NewHandler(httpapi.HandlerConfig{Root: system.Root, KV: kv, Raft: raft, Timeout: checkWait}))
	t.Cleanup(api.Close)
	scrape := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "raftkv_up 1\n") })
	lst := httptest.NewServer(httpapi.NewHealthHandler(httpapi.HealthConfig{Root: system.Root, KV: kv, Raft: raft, Timeout: checkWait, Metrics: scrape}))
	t.Cleanup(lst.Close)
	f.client, f.metrics = api.URL, lst.URL
	return f
}

func (f *healthFixture) askedFor() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]any(nil), f.asked...)
}

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

const allReady = "[+]raft_actor ok\n[+]kv_actor ok\n[+]leader ok\n[+]applied ok\n[+]no_space_alarm ok\n"

// /livez and /readyz answer as etcd's: "ok", with ?verbose a line per
// check; on a failure 503 and every line, the failed ones with why. Each
// check fails alone for its own cause, and /livez never for the cluster.
// The client API and the metrics listener answer the same.
func TestHealthChecks(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	verifyNoLeaks(t)
	cases := []struct {
		name   string
		m      member
		path   string
		status int
		body   string // exact, unless contains is set
		// contains, when set, is what the body must hold instead
		contains []string
	}{
		{name: "live", m: healthy, path: "/livez", status: 200, body: "ok\n"},
		{name: "live verbose", m: healthy, path: "/livez?verbose", status: 200, body: "[+]raft_actor ok\n[+]kv_actor ok\nok\n"},
		{name: "ready", m: healthy, path: "/readyz", status: 200, body: "ok\n"},
		{name: "ready verbose", m: healthy, path: "/readyz?verbose=1", status: 200, body: allReady + "ok\n"},

		{name: "no leader: live", m: healthy.with(func(m *member) { m.status = messages.Status{ID: 1} }),
			path: "/livez", status: 200, body: "ok\n"},
		{name: "no leader: not ready", m: healthy.with(func(m *member) {
			m.status, m.read = messages.Status{ID: 1}, messages.Result{Err: messages.ErrNoLeader}
		}), path: "/readyz", status: 503,
			body: "[+]raft_actor ok\n[+]kv_actor ok\n[-]leader failed: no raft leader\n" +
				"[-]applied failed: no leader to learn the commit index from\n[+]no_space_alarm ok\n"},
		{name: "applied behind: not ready", m: healthy.with(func(m *member) { m.read = nil }),
			path: "/readyz", status: 503,
			body: "[+]raft_actor ok\n[+]kv_actor ok\n[+]leader ok\n" +
				"[-]applied failed: not applied up to the leader's commit index within 100ms\n[+]no_space_alarm ok\n"},
		{name: "applied read refused", m: healthy.with(func(m *member) { m.read = messages.Result{Err: messages.ErrStopped} }),
			path: "/readyz", status: 503, contains: []string{"[-]applied failed: could not learn the commit index: node stopped"}},
		{name: "space alarm: live", m: healthy.with(func(m *member) { m.store = messages.StoreStatus{NoSpace: true, Used: 123} }),
			path: "/livez", status: 200, body: "ok\n"},
		{name: "space alarm: not ready", m: healthy.with(func(m *member) { m.store = messages.StoreStatus{NoSpace: true, Used: 123} }),
			path: "/readyz", status: 503,
			body: "[+]raft_actor ok\n[+]kv_actor ok\n[+]leader ok\n[+]applied ok\n" +
				"[-]no_space_alarm failed: alarm NOSPACE: the data takes 123 bytes, too near the quota for a request of the largest size\n"},
		{name: "space alarm excluded", m: healthy.with(func(m *member) { m.store = messages.StoreStatus{NoSpace: true} }),
			path: "/readyz?exclude=no_space_alarm", status: 200, body: "ok\n"},
		{name: "raft actor silent", m: healthy.with(func(m *member) { m.status = nil }),
			path: "/livez", status: 503,
			contains: []string{"[-]raft_actor failed: the raft actor did not answer within 100ms", "[+]kv_actor ok"}},
		{name: "raft actor silent: leader unknown", m: healthy.with(func(m *member) { m.status = nil }),
			path: "/readyz", status: 503, contains: []string{"[-]leader failed: unknown: the raft actor did not answer"}},
		{name: "kv actor silent", m: healthy.with(func(m *member) { m.store = nil }),
			path: "/livez?verbose", status: 503,
			contains: []string{"[+]raft_actor ok", "[-]kv_actor failed: the state machine did not answer within 100ms"}},
		{name: "kv actor answers garbage", m: healthy.with(func(m *member) { m.store = "nonsense" }),
			path: "/livez", status: 503, contains: []string{"[-]kv_actor failed: the state machine answered a status request with an unexpected string"}},

		{name: "excluded twice and unknown", m: healthy,
			path: "/readyz?verbose&exclude=leader&exclude=applied&exclude=bogus&exclude=bogus", status: 200,
			body: "[+]raft_actor ok\n[+]kv_actor ok\n[+]no_space_alarm ok\n" + `warn: no check to exclude named "bogus"` + "\nok\n"},
		{name: "all excluded", m: healthy, path: "/livez?exclude=raft_actor&exclude=kv_actor", status: 200, body: "ok\n"},
		{name: "one check", m: healthy.with(func(m *member) { m.status = messages.Status{ID: 1} }),
			path: "/readyz/leader", status: 503, body: "[-]leader failed: no raft leader\n"},
		{name: "one check verbose", m: healthy, path: "/livez/kv_actor?verbose", status: 200, body: "[+]kv_actor ok\nok\n"},
		{name: "a check of readyz only", m: healthy, path: "/livez/leader", status: 404,
			contains: []string{`no check "leader": /livez runs raft_actor, kv_actor`}},
		{name: "no such check", m: healthy, path: "/readyz/nope", status: 404, contains: []string{`no check "nope"`}},
		{name: "empty check name", m: healthy, path: "/readyz/", status: 404, contains: []string{`no check ""`}},
		{name: "exclude on one check", m: healthy, path: "/readyz/leader?exclude=leader", status: 400,
			contains: []string{`unknown parameter "exclude"`}},
		{name: "unknown parameter", m: healthy, path: "/livez?verbos", status: 400,
			contains: []string{`unknown parameter "verbos" for GET /livez; it takes verbose, exclude`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newHealthFixture(t, c.m)
			for _, base := range []string{f.client, f.metrics} {
				code, hdr, body := get(t, http.MethodGet, base+c.path)
				if code != c.status {
					t.Errorf("%s: status %d, want %d; body %q", base, code, c.status, body)
				}
				if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("%s: Content-Type %q", base, ct)
				}
				if c.contains == nil && body != c.body {
					t.Errorf("%s: body\n%s\nwant\n%s", base, body, c.body)
				}
				for _, line := range c.contains {
					if !strings.Contains(body, line) {
						t.Errorf("%s: body\n%s\nhas no line %q", base, body, line)
					}
				}
			}
		})
	}
}

// A request asks each actor what its checks read, once, and no more: an
// excluded check costs nothing, /livez never reads through raft.
func TestHealthAsksOnlyWhatItChecks(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	verifyNoLeaks(t)
	for _, c := range []struct {
		path string
		want []any
	}{
		{"/livez", []any{messages.StatusRequest{}, messages.StoreStatusRequest{}}},
		{"/readyz", []any{messages.StatusRequest{}, messages.StoreStatusRequest{}, messages.Get{}}},
		{"/readyz?exclude=applied", []any{messages.StatusRequest{}, messages.StoreStatusRequest{}}},
		{"/readyz/applied", []any{messages.Get{}}},
		{"/readyz/no_space_alarm", []any{messages.StoreStatusRequest{}}},
		{"/readyz?exclude=raft_actor&exclude=leader&exclude=applied", []any{messages.StoreStatusRequest{}}},
	} {
		t.Run(c.path, func(t *testing.T) {
			f := newHealthFixture(t, healthy)
			if code, _, body := get(t, http.MethodGet, f.client+c.path); code != 200 {
				t.Fatalf("status %d %q", code, body)
			}
			got := f.askedFor()
			if len(got) != len(c.want) {
				t.Fatalf("asked %#v, want %#v", got, c.want)
			}
			for _, w := range c.want {
				n := 0
				for _, g := range got {
					if g == w {
						n++
					}
				}
				if n != 1 {
					t.Errorf("asked %#v %d times, want once (all: %#v)", w, n, got)
				}
			}
		})
	}
}

// The metrics listener serves /metrics, the health endpoints and nothing
// else; /healthz answers there as on the client API.
func TestHealthHandlerRoutes(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	verifyNoLeaks(t)
	f := newHealthFixture(t, healthy)
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/metrics", 200, "raftkv_up 1\n"},
		{"GET", "/healthz", 200, "ok\n"},
		{"GET", "/v1/kv/a", 404, "not found: this listener serves /metrics, /livez, /readyz and /healthz\n"},
		{"GET", "/a", 404, "not found: this listener serves /metrics, /livez, /readyz and /healthz\n"},
		{"POST", "/livez", 405, "method not allowed; allowed: GET\n"},
		{"POST", "/healthz", 405, "method not allowed; allowed: GET\n"},
	} {
		code, hdr, body := get(t, c.method, f.metrics+c.path)
		if code != c.status || body != c.body {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, code, body, c.status, c.body)
		}
		if code == 405 && hdr.Get("Allow") != "GET" {
			t.Errorf("%s %s: Allow %q, want GET", c.method, c.path, hdr.Get("Allow"))
		}
	}
	// No Metrics: /metrics is no route.
	system := quietSystem(t)
	srv := httptest.NewServer(httpapi.NewHealthHandler(httpapi.HealthConfig{Root: system.Root}))
	defer srv.Close()
	if code, _, body := get(t, "GET", srv.URL+"/metrics"); code != 404 || !strings.Contains(body, "serves /livez, /readyz and /healthz") {
		t.Errorf("/metrics without a handler: %d %q, want 404", code, body)
	}
	// Actors not given: every check fails, and says so.
	if code, _, body := get(t, "GET", srv.URL+"/livez"); code != 503 || !strings.Contains(body, "[-]raft_actor failed: client api: actor not configured\n") {
		t.Errorf("/livez without actors: %d %q, want 503", code, body)
	}
}

// Members of a real cluster are ready; a member cut off from the others is
// alive but not ready, and ready again once it is back; a member whose
// data is near the quota is not ready while its space alarm is raised.
func TestReadyzOfAMemberCutOff(t *testing.T) {
	verifyNoLeaks(t)
	c := testcluster.New(t, testcluster.Config{})
	if _, err := c.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	probe := func(m *testcluster.Member, path string) testcluster.Reply {
		t.Helper()
		r, err := c.Do(m, http.MethodGet, path, "")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, m := range c.Members {
		testutil.Eventually(t, 10*time.Second, "member ready", func() error {
			if r := probe(m, "/readyz?verbose"); r.Code != 200 || r.Body != allReady+"ok\n" {
				return fmt.Errorf("member %d: /readyz %d %q", m.ID, r.Code, r.Body)
			}
			return nil
		})
	}
	cut := c.Member(2)
	c.Net.Isolate(cut.ID)
	testutil.Eventually(t, 10*time.Second, "cut-off member not ready", func() error {
		r := probe(cut, "/readyz")
		if r.Code != 503 || !strings.Contains(r.Body, "[-]applied failed: ") {
			return fmt.Errorf("/readyz %d %q, want 503 with applied failed", r.Code, r.Body)
		}
		return nil
	})
	if r := probe(cut, "/livez?verbose"); r.Code != 200 || r.Body != "[+]raft_actor ok\n[+]kv_actor ok\nok\n" {
		t.Errorf("cut-off member: /livez %d %q, want 200", r.Code, r.Body)
	}
	for _, m := range c.Members {
		if m != cut {
			if r := probe(m, "/readyz"); r.Code != 200 {
				t.Errorf("member %d of the majority: /readyz %d %q", m.ID, r.Code, r.Body)
			}
		}
	}
	c.Net.Heal()
	testutil.Eventually(t, 10*time.Second, "member ready again", func() error {
		if r := probe(cut, "/readyz"); r.Code != 200 {
			return fmt.Errorf("/readyz %d %q", r.Code, r.Body)
		}
		return nil
	})
}

// With a quota smaller than the largest request, the space alarm is
// raised from the start: the member is live, not ready, and ready with
// the alarm excluded.
func TestReadyzSpaceAlarm(t *testing.T) {
	verifyNoLeaks(t)
	c := testcluster.New(t, testcluster.Config{Members: 1, Tune: func(cfg *actors.NodeConfig) { cfg.Quota = 1 << 20 }})
	m := c.Member(1)
	if _, err := c.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path string
		code int
		line string
	}{
		{"/readyz", 503, "[-]no_space_alarm failed: alarm NOSPACE: the data takes "},
		{"/readyz?verbose&exclude=no_space_alarm", 200, "[+]applied ok\n"},
		{"/livez", 200, "ok\n"},
	}
	testutil.Eventually(t, 10*time.Second, "answers of a member over its quota", func() error {
		for _, w := range want {
			r, err := c.Do(m, http.MethodGet, w.path, "")
			if err != nil {
				return err
			}
			if r.Code != w.code || !strings.Contains(r.Body, w.line) {
				return fmt.Errorf("%s: %d %q, want %d with %q", w.path, r.Code, r.Body, w.code, w.line)
			}
		}
		return nil
	})
}
