package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// httpClient is shared by all tests so that TestMain can close its idle
// connections before goleak looks for stray goroutines. Its timeout is above
// the node's 5 s request timeout, so a slow request shows as the node's 504
// rather than as a client-side error.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// reply is one HTTP exchange; err is set when there was no answer at all.
type reply struct {
	code   int
	body   string
	header http.Header
	err    error
}

func (r reply) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %q", r.code, strings.TrimSpace(r.body))
}

func (r reply) ok() bool { return r.err == nil && r.code >= 200 && r.code < 300 }

// retryable reports an answer that changed nothing for sure (503: not
// proposed) or that may change once the cluster settles (504, no answer).
// Callers only retry it for reads and for writes they may safely repeat.
func (r reply) retryable() bool {
	return r.err != nil || r.code == http.StatusServiceUnavailable || r.code == http.StatusGatewayTimeout
}

// tlsClients holds the clients of members served over TLS, by host:port:
// the CA that signs their certificates and the client certificate they
// want are a test's own.
var tlsClients sync.Map

// registerClient makes calls to base's host use client until the test ends.
func registerClient(t *testing.T, base string, client *http.Client) {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	tlsClients.Store(u.Host, client)
	t.Cleanup(func() {
		tlsClients.Delete(u.Host)
		client.CloseIdleConnections()
	})
}

// clientFor is the client for a request to rawURL.
func clientFor(rawURL string) *http.Client {
	if u, err := url.Parse(rawURL); err == nil {
		if c, ok := tlsClients.Load(u.Host); ok {
			return c.(*http.Client)
		}
	}
	return httpClient
}

func call(method, url, body string) reply { return callWith(method, url, body, nil) }

// callWith is call with request headers, given as name, value pairs.
func callWith(method, url, body string, header map[string]string) reply {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := clientFor(url).Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: string(b), header: resp.Header, err: err}
}

// status is the JSON of GET /v1/status, decoded here rather than with the
// messages package so that the test pins the wire format.
type status struct {
	ID        uint64            `json:"id"`
	Leader    uint64            `json:"leader"`
	Term      uint64            `json:"term"`
	RaftState string            `json:"raft_state"`
	Commit    uint64            `json:"commit_index"`
	Applied   uint64            `json:"applied_index"`
	Members   map[uint64]string `json:"members"`
}

func getStatus(base string) (status, error) {
	r := call(http.MethodGet, base+"/v1/status", "")
	if r.err != nil {
		return status{}, r.err
	}
	if r.code != http.StatusOK {
		return status{}, fmt.Errorf("GET %s/v1/status: %s", base, r)
	}
	var st status
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		return status{}, fmt.Errorf("GET %s/v1/status: %w in %q", base, err, r.body)
	}
	return st, nil
}

// mustWrite PUTs value at path through base and wants want. It repeats the
// request while the answer is retryable: repeating a PUT of the same value
// is harmless, so the outcome is the same whether or not the first landed.
func mustWrite(t *testing.T, base, path, value string, want int) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, "PUT "+base+path, func() error {
		r := call(http.MethodPut, base+path, value)
		if r.retryable() {
			return errors.New(r.String())
		}
		if r.code != want {
			t.Fatalf("PUT %s%s: %s, want %d", base, path, r, want)
		}
		return nil
	})
}

// mustRead GETs path through base and wants 200 with want. 503 and 504 are
// retried (the member may not know a leader yet, or still be catching up);
// any other answer, a 404 above all, fails at once: after an acknowledged
// write a linearizable read must never miss it.
func mustRead(t *testing.T, base, path, want string) {
	t.Helper()
	if err := readValue(base, path, want, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// errUnavailable marks a read that got no definite answer before its
// deadline, as opposed to a wrong one.
var errUnavailable = errors.New("member gave no definite answer")

// readValue is mustRead for use off the test goroutine.
func readValue(base, path, want string, timeout time.Duration) error {
	var wrong error // an answer no wait mends
	err := testutil.Poll(timeout, testutil.Interval, func() error {
		r := call(http.MethodGet, base+path, "")
		switch {
		case r.retryable():
			return fmt.Errorf("%w: still %s", errUnavailable, r)
		case r.code != http.StatusOK || r.body != want:
			wrong = fmt.Errorf("GET %s%s: %s, want 200 %q", base, path, r, want)
		}
		return nil
	})
	if wrong != nil {
		return wrong
	}
	if err != nil {
		return fmt.Errorf("GET %s%s: %w", base, path, err)
	}
	return nil
}

// waitEqualDigests waits until every member answers the same digest at
// the same index: they applied the same entries to the same state.
func waitEqualDigests(t *testing.T, ms ...*member) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, "equal digests", func() error {
		var sums []string
		for _, m := range ms {
			r := call(http.MethodGet, m.base+"/v1/digest", "")
			var d struct {
				Index uint64 `json:"index"`
				Sum   string `json:"sha256"`
			}
			if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &d) != nil {
				return fmt.Errorf("%s: %s", m.name(), r)
			}
			sums = append(sums, fmt.Sprintf("%d:%s", d.Index, d.Sum))
		}
		for _, s := range sums[1:] {
			if s != sums[0] {
				return errors.New(strings.Join(sums, " "))
			}
		}
		return nil
	})
}
