// Package fuzz fuzzes the client API of a running three-member cluster
// (internal/testcluster: the members in this process, their peers over the
// HTTP transport on loopback) with whole HTTP requests: method, path,
// query, headers and body, sent as raw bytes so that nothing is cleaned or
// escaped on the way. After each request it checks what must hold whatever
// the request was, leaving the exact answers to the API's own tests:
//
//   - no answer is a 5xx other than 503 and 504, and every request is
//     answered (a handler that panics closes the connection unanswered);
//   - no member stopped (a fatal error in any actor stops the member), and
//     each still answers /v1/status;
//   - once the members have applied the same index, their digests are
//     equal: whatever was committed, every member applied it alike.
//
// The seed corpus (the f.Add calls below) runs in every `go test`; to
// fuzz, run
//
//	go test ./tests/fuzz -run '^$' -fuzz FuzzClientAPI -fuzztime 10m
//
// The cluster lives across inputs, as a real one does, so an input runs on
// the state the earlier ones left; a cluster that an input broke is
// replaced for the next one. A DELETE that could remove a founding member
// is not sent (its member would stop, as it must), and members an input
// added are removed again after it.
package fuzz

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testcluster"
	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// Bounds of one input: a request larger than these is not sent. The path
// bound leaves room for a 40,000-byte key, over bbolt's 32,768-byte limit.
const (
	maxTargetBytes = 128 << 10
	maxBodyBytes   = 256 << 10
	maxHeaderLines = 16
)

// Time bounds. Every request the API serves answers within its 2 s
// timeout (a write then answers 504); answerWithin leaves room for a
// loaded machine under -race. A watch's stream is read for streamRead.
const (
	answerWithin   = 15 * time.Second
	streamRead     = 200 * time.Millisecond
	convergeWithin = 15 * time.Second
	startWithin    = 20 * time.Second
)

// bigKey is a key longer than bbolt's 32,768-byte limit (and than the
// API's 8 KiB, messages.MaxKeyBytes).
var bigKey = strings.Repeat("k", 40_000)

// seeds are the corpus every `go test` runs: member (of three), method,
// path, query, headers ("Name: value" lines), body.
var seeds = []struct {
	member                       uint8
	method, path, query, headers string
	body                         string
}{
	{0, "PUT", "/v1/kv/" + bigKey, "", "", "v"},
	{1, "PUT", "/" + bigKey, "", "", "v"}, // raftexample's route
	{2, "PUT", "/v1/kv/" + strings.Repeat("e", 8<<10+1), "", "", "v"},
	{0, "GET", "/v1/kv/" + bigKey, "", "", ""},
	{0, "DELETE", "/v1/kv/" + bigKey, "", "", ""},
	{0, "PUT", "/v1/kv/", "", "", "empty key"},
	{1, "PUT", "/", "", "", "empty key"},
	{2, "DELETE", "/v1/kv/", "", "", ""},
	{0, "POST", "/v1/txn", "", "Content-Type: application/json",
		`{"success":[{"op":"put","key":"` + bigKey + `","value":"v"}]}`},
	{1, "POST", "/v1/txn", "", "",
		`{"compare":[{"key":"` + bigKey + `","target":"value","op":"=","value":"v"}],"success":[{"op":"put","key":"a","value":"v"}],"failure":[{"op":"get","key":"` + bigKey + `"}]}`},
	{2, "POST", "/v1/txn", "", "",
		`{"compare":[{"key_b64":"/w==","target":"create_revision","op":"=","number":0}],"success":[{"op":"put","key_b64":"/wA=","value_b64":"AP8="},{"op":"range","key":"a","prefix":true}],"failure":[{"op":"delete","key":"","end":""}]}`},
	{0, "POST", "/v1/txn", "", "", `{"success":[{"op":"put","key":"","value":"v"},{"op":"delete","key":"a","prefix":true}]}`},
	{0, "POST", "/v1/txn", "", "", `{"compare":[{"key":"a","target":"nope","op":"~"}],"success":[],"failure":[]} trailing`},
	{0, "POST", "/v1/members/4", "", "", `{"peer_url":"http://127.0.0.1:99999"}`},
	{1, "POST", "/v1/members/5", "", "", `{"peer_url":"http://127.0.0.1:022379","learner":true}`},
	{2, "POST", "/6", "", "", "http://127.0.0.1:99999"}, // raftexample's route
	{0, "POST", "/v1/members/7/promote", "", "", ""},
	{0, "POST", "/v1/leader", "", "", `{"id":2}`},
	{0, "GET", "//", "", "", ""},
	{1, "PUT", "//", "", "", "v"},
	{2, "PUT", "/v1/kv//a//b", "", "", "v"},
	{0, "GET", "/..", "", "", ""},
	{1, "PUT", "/v1/kv/../../x", "", "", "v"},
	{2, "PUT", "/v1/kv/a/./b/../c", "", "", "v"},
	{0, "PUT", "/v1/kv/a%2F%2Fb%2F..%2Fc", "", "", "v"},
	{1, "PUT", "/v1/kv/%FF%00%20", "", "", "v"},
	{2, "PUT", "/v1/kv/%zz%", "", "", "v"},
	{0, "GET", "/v1/kv/a", "consistency=serializable", "", ""},
	{0, "DELETE", "/v1/kv/", "prefix=true", "", ""},
	{1, "DELETE", "/v1/kv/a", "prefix=true", "", ""},
	{2, "GET", "/v1/kv/", "prefix=&end=%00&limit=-1&revision=99999999999999999999", "", ""},
	{0, "GET", "/v1/kv/a", "bogus=1&consistency=linearizable&consistency=serializable", "", ""},
	{1, "PUT", "/v1/kv/a", "unknown=param", "", "v"},
	{2, "PUT", "/v1/kv/a", "", `If-Match: "1"`, "v"},
	{0, "PUT", "/v1/kv/a", "", "If-None-Match: *\nIf-Match: W/\"2\", \"3\"", "v"},
	{1, "DELETE", "/v1/kv/a", "", `If-Match: "18446744073709551616"`, ""},
	{2, "GET", "/v1/watch/a", "start_revision=-1&prev_kv=maybe", "", ""},
	{0, "GET", "/v1/watch/", "prefix=true&start_revision=1", "Last-Event-ID: 1", ""},
	{1, "GET", "/v1/watch/a", "", "Last-Event-ID: -5", ""},
	{2, "POST", "/v1/watch/a", "", "", ""},
	{0, "GET", "/v1/digest", "", "", ""},
	{1, "PATCH", "/v1/members", "", "", ""},
	{2, "GET", "/healthz", "x=1", "", ""},
	{0, "HEAD", "/v1/kv/a%2F%2Fb%2F..%2Fc", "", "", ""},
	{1, "OPTIONS", "*", "", "", ""},
}

func FuzzClientAPI(f *testing.F) {
	for _, s := range seeds {
		f.Add(s.member, s.method, s.path, s.query, s.headers, []byte(s.body))
	}
	var c *testcluster.Cluster
	f.Cleanup(func() {
		if c != nil {
			if err := c.Stop(); err != nil {
				f.Error(err)
			}
		}
	})
	f.Fuzz(func(t *testing.T, member uint8, method, path, query, headers string, body []byte) {
		req, ok := newRequest(method, path, query, headers, body)
		if !ok || req.removesFounder() {
			return
		}
		if c == nil || c.Stopped() != nil {
			// A cluster an earlier input broke (that input failed) is
			// replaced, so that each input is judged on its own.
			if c != nil {
				_ = c.Stop()
			}
			var err error
			if c, err = startCluster(); err != nil {
				c = nil
				t.Fatal(err)
			}
		}
		m := c.Members[int(member)%len(c.Members)]
		res, err := req.send(strings.TrimPrefix(m.URL, "http://"))
		t.Logf("%v to member %d: %d %s", req, m.ID, res.status, clip(res.body, 200))
		switch {
		case err != nil:
			t.Errorf("%v to member %d: %s", req, m.ID, clipErr(err))
		case res.status >= 500 && res.status != http.StatusServiceUnavailable && res.status != http.StatusGatewayTimeout:
			t.Errorf("%v to member %d: %d %s", req, m.ID, res.status, clip(res.body, 300))
		}
		checkCluster(t, c, req)
	})
}

// startCluster starts three members over the HTTP transport and waits for
// a leader. RAFTKV_TEST_LOG=1 shows their logs.
func startCluster() (*testcluster.Cluster, error) {
	c, err := testcluster.Start(testcluster.Config{OverHTTP: true})
	if err != nil {
		return nil, err
	}
	if _, err := c.WaitLeader(startWithin); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

// checkCluster checks what must hold after any request: every member runs
// and answers, the members converge to one state, and only the founding
// members remain (members the request added are removed again).
func checkCluster(t *testing.T, c *testcluster.Cluster, req *request) {
	t.Helper()
	if err := c.Stopped(); err != nil {
		t.Fatalf("after %v: %s", req, clipErr(err))
	}
	for _, m := range c.Members {
		if _, err := c.Status(m); err != nil {
			t.Fatalf("after %v: member %d does not answer /v1/status: %s", req, m.ID, clipErr(err))
		}
	}
	if _, err := c.Converged(convergeWithin); err != nil {
		t.Fatalf("after %v: %s", req, clipErr(err))
	}
	if removeAdded(t, c) {
		if _, err := c.Converged(convergeWithin); err != nil {
			t.Fatalf("after %v and the removal of the members it added: %s", req, clipErr(err))
		}
	}
}

// removeAdded removes every member but the founding ones, and says whether
// there was one. The members have converged: each lists the same.
func removeAdded(t *testing.T, c *testcluster.Cluster) bool {
	t.Helper()
	list, err := c.MemberList(c.Members[0])
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	for _, m := range list {
		if m.ID >= 1 && m.ID <= uint64(len(c.Members)) {
			continue
		}
		removed = true
		r, _ := newRequest(http.MethodDelete, "/v1/members/"+strconv.FormatUint(m.ID, 10), "", "", nil)
		testutil.Eventually(t, convergeWithin, fmt.Sprintf("remove member %d, which an input added", m.ID), func() error {
			res, err := r.send(strings.TrimPrefix(c.Members[0].URL, "http://"))
			if err == nil && res.status != http.StatusNoContent && res.status != http.StatusNotFound {
				err = fmt.Errorf("%d %s", res.status, clip(res.body, 300))
			}
			return err
		})
	}
	return removed
}

// request is one HTTP/1.1 request, written as is on its own connection.
type request struct {
	method, target string
	header         [][2]string
	body           []byte
}

// newRequest makes the request of a fuzz input: a method of one token (GET
// if none), the path (made to start with /) and the query as the request
// target, with only the bytes that would end the request line or the
// target percent-encoded (every escape in the input goes as it is), and
// the header lines that are valid fields. It refuses inputs over the
// bounds.
func newRequest(method, path, query, headers string, body []byte) (*request, bool) {
	if len(path)+len(query) > maxTargetBytes || len(body) > maxBodyBytes {
		return nil, false
	}
	method = strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return -1
		}
		return r
	}, method)
	if method == "" {
		method = http.MethodGet
	}
	target := escapeLine(path)
	if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	if query != "" {
		target += "?" + escapeLine(query)
	}
	r := &request{method: method, target: target, body: body}
	for line := range strings.SplitSeq(headers, "\n") {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validName(name) || len(r.header) == maxHeaderLines {
			continue
		}
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "Upgrade", "Te", "Trailer":
			continue // the framing of the request is this client's
		}
		value = strings.Map(func(r rune) rune {
			if (r < ' ' && r != '\t') || r == 0x7f {
				return -1
			}
			return r
		}, value)
		r.header = append(r.header, [2]string{name, value})
	}
	return r, true
}

// escapeLine percent-encodes the bytes that cannot stand in a request
// target: controls, space, DEL, and '#', which would start a fragment.
func escapeLine(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c == 0x7f || c == '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// validName reports whether name is an HTTP token.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// removesFounder reports whether the request could remove a founding
// member, ids 1 to 3: a DELETE whose path has a segment the API could read
// as one of those ids (strconv.ParseUint with base 0, as it reads member
// ids). Such a member stops, as it must, and no input should make it.
func (r *request) removesFounder() bool {
	if !strings.EqualFold(r.method, http.MethodDelete) {
		return false
	}
	u, err := url.ParseRequestURI(r.target)
	if err != nil {
		return false // refused by the server before any handler
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if id, err := strconv.ParseUint(strings.TrimSpace(seg), 0, 64); err == nil && id >= 1 && id <= testcluster.DefaultMembers {
			return true
		}
	}
	return false
}

// String describes the request in one bounded line.
func (r *request) String() string {
	var names []string
	for _, h := range r.header {
		names = append(names, h[0]+": "+clip([]byte(h[1]), 40))
	}
	return fmt.Sprintf("%s %s (%d bytes) [%s] body %d bytes %s", r.method, clip([]byte(r.target), 120), len(r.target),
		strings.Join(names, "; "), len(r.body), clip(r.body, 120))
}

// clip quotes at most n bytes of b, saying how many it left out.
func clip(b []byte, n int) string {
	if len(b) <= n {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%q… (%d more bytes)", b[:n], len(b)-n)
}

// clipErr is err's text, at most 600 bytes of it: a member's error may
// quote a 40,000-byte key.
func clipErr(err error) string {
	s := err.Error()
	if len(s) <= 600 {
		return s
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:600], len(s)-600)
}

// answer is what a member answered.
type answer struct {
	status int
	body   []byte
}

// send writes r on a new connection to addr and reads the answer: all of
// it, or, for a stream (a watch), what comes within streamRead. An error
// means no answer came.
func (r *request) send(addr string) (answer, error) {
	conn, err := net.DialTimeout("tcp", addr, answerWithin)
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(answerWithin)); err != nil {
		return answer{}, err
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.method, r.target, addr)
	for _, h := range r.header {
		fmt.Fprintf(&msg, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&msg, "Content-Length: %d\r\n\r\n", len(r.body))
	msg.Write(r.body)
	// The request is written while the answer is read: a server that
	// answers before reading the whole body must not leave both sides
	// waiting on full buffers.
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(msg.Bytes())
		wrote <- err
	}()
	defer func() {
		_ = conn.Close() // ends the write, if the server stopped reading
		<-wrote
	}()
	// The method tells the reader whether a body follows (none for HEAD).
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: r.method})
	if err != nil {
		return answer{}, fmt.Errorf("no answer: %w", err)
	}
	defer resp.Body.Close()
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if stream {
		if err := conn.SetReadDeadline(time.Now().Add(streamRead)); err != nil {
			return answer{}, err
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ne net.Error
	if err != nil && !(stream && errors.As(err, &ne) && ne.Timeout()) {
		return answer{status: resp.StatusCode, body: body}, fmt.Errorf("%d answer cut: %w", resp.StatusCode, err)
	}
	return answer{status: resp.StatusCode, body: body}, nil
}

// TestRemovesFounder pins the guard that keeps inputs from removing a
// founding member.
func TestRemovesFounder(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           bool
	}{
		{"DELETE", "/v1/members/2", true},
		{"DELETE", "/3", true},
		{"DELETE", "/0x1", true},
		{"DELETE", "/v1/members/0b11/", true},
		{"delete", "/v1/members/01", true},
		{"DELETE", "/v1/members/%31", true},
		{"DELETE", "/v1/members/4", false},
		{"DELETE", "/v1/kv/a", false},
		{"POST", "/v1/members/1", false},
		{"DELETE", "/%zz/1", false}, // the server refuses the target
	} {
		r := &request{method: tc.method, target: tc.target}
		if got := r.removesFounder(); got != tc.want {
			t.Errorf("%s %s: removesFounder %v, want %v", tc.method, tc.target, got, tc.want)
		}
	}
}

// TestNewRequest pins how an input becomes a request line and headers.
func TestNewRequest(t *testing.T) {
	for _, tc := range []struct {
		method, path, query, headers string
		wantMethod, wantTarget       string
		wantHeaders                  []string
	}{
		{"", "v1/kv/a b", "x=#1", "", "GET", "/v1/kv/a%20b?x=%231", nil},
		{"PU T\r\n", "//", "", "If-Match: \"1\"\nHost: evil\nBad Name: x\nContent-Length: 9\nLast-Event-ID: 4\r", "PUT", "//", []string{`If-Match: "1"`, "Last-Event-ID: 4"}},
		{"DELETE", "/v1/kv/%FF\x00", "", "", "DELETE", "/v1/kv/%FF%00", nil},
	} {
		r, ok := newRequest(tc.method, tc.path, tc.query, tc.headers, nil)
		if !ok {
			t.Fatalf("%q %q refused", tc.method, tc.path)
		}
		var hs []string
		for _, h := range r.header {
			hs = append(hs, h[0]+": "+h[1])
		}
		if r.method != tc.wantMethod || r.target != tc.wantTarget || !slices.Equal(hs, tc.wantHeaders) {
			t.Errorf("%q %q %q %q: %q %q %q, want %q %q %q", tc.method, tc.path, tc.query, tc.headers,
				r.method, r.target, hs, tc.wantMethod, tc.wantTarget, tc.wantHeaders)
		}
	}
	if _, ok := newRequest("GET", strings.Repeat("a", maxTargetBytes+1), "", "", nil); ok {
		t.Error("a target over the bound was accepted")
	}
}
