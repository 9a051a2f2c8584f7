package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/raftkv/node/etcdapi"
	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/version"
)

// peerAnswer is how a fake member answers GET /version on its peer port.
type peerAnswer struct {
	status    int
	clusterID string // X-Etcd-Cluster-ID
	body      string
	hang      bool // answers only once the asker gave up
}

// fakePeer serves a as a member's peer port.
func fakePeer(t *testing.T, a peerAnswer) string {
	t.Helper()
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != httpapi.PeerVersionPath || r.Method != http.MethodGet {
			t.Errorf("a member was asked %s %s", r.Method, r.URL.Path)
		}
		if a.hang {
			select {
			case <-r.Context().Done():
			case <-gone:
			}
			return
		}
		w.Header().Set("X-Etcd-Cluster-ID", a.clusterID)
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(gone) })
	return srv.URL
}

// GET /version: etcd's three fields, and this member's version and the
// cluster's, the lowest of its members' or not_decided when one is not
// known.
func TestVersion(t *testing.T) {
	verifyNoLeaks(t)
	self := version.Version // "devel" in a test binary: it orders against no release
	same := func(cid string) peerAnswer {
		return peerAnswer{status: 200, clusterID: cid, body: `{"server":"` + self + `","data_format":"raftkv-3"}`}
	}
	for _, c := range []struct {
		name    string
		peers   []peerAnswer
		cluster string
	}{
		{name: "one member", cluster: self},
		{name: "members of the same version", peers: []peerAnswer{same("a"), same("a")}, cluster: self},
		{name: "a member of a release without /version", peers: []peerAnswer{same("a"), {status: 404, clusterID: "a", body: "404 page not found"}}, cluster: "not_decided"},
		{name: "a member of another cluster", peers: []peerAnswer{same("a"), same("b")}, cluster: "not_decided"},
		{name: "a member that answers no version", peers: []peerAnswer{{status: 200, clusterID: "a", body: `{}`}}, cluster: "not_decided"},
		{name: "a member that answers no JSON", peers: []peerAnswer{{status: 200, clusterID: "a", body: `<html>`}}, cluster: "not_decided"},
		{name: "a member that does not answer in time", peers: []peerAnswer{same("a"), {hang: true}}, cluster: "not_decided"},
		{name: "versions that cannot be ordered", peers: []peerAnswer{{status: 200, clusterID: "a", body: `{"server":"v1.0.0"}`}}, cluster: "not_decided"},
	} {
		t.Run(c.name, func(t *testing.T) {
			members := map[uint64]string{1: "http://127.0.0.1:1"} // this member: never asked
			for i, p := range c.peers {
				members[uint64(i+2)] = fakePeer(t, p)
			}
			status := messages.Status{ID: 1, Leader: 1, Members: members}
			f := newFixture(t, nil, status, httpapi.HandlerConfig{ClusterID: 0xa, PeerClient: &http.Client{}})
			start := time.Now()
			resp, body := f.do(t, "GET", "/version", nil, false)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET /version: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("GET /version took %v: a member that does not answer held it up", took)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			want := map[string]string{
				"etcdserver": etcdapi.Version, "etcdcluster": etcdapi.Version, "storage": etcdapi.Version,
				"server": self, "cluster": c.cluster, "data_format": version.DataFormat,
			}
			if len(got) != len(want) {
				t.Errorf("body %s, want the fields of %v", body, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (body %s)", k, got[k], v, body)
				}
			}
		})
	}
	t.Run("methods and parameters", func(t *testing.T) {
		runCases(t, []apiCase{
			{name: "not POST", method: "POST", path: "/version", body: ptr(""), wantStatus: 405, wantHeader: map[string]string{"Allow": "GET"}},
			{name: "no parameters", method: "GET", path: "/version?x=1", wantStatus: 400},
			{name: "not a key", method: "PUT", path: "/version", body: ptr("v"), wantStatus: 405},
		})
	})
}

// The peer port answers this member's versions, with no cluster version
// (which would have it ask the others in turn), and its cluster id.
func TestPeerVersion(t *testing.T) {
	srv := httptest.NewServer(httpapi.NewPeerVersionHandler(0xab))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + httpapi.PeerVersionPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vs httpapi.Versions
	if err := json.NewDecoder(resp.Body).Decode(&vs); err != nil {
		t.Fatal(err)
	}
	want := httpapi.Versions{EtcdServer: etcdapi.Version, EtcdCluster: etcdapi.Version, Storage: etcdapi.Version,
		Server: version.Version, DataFormat: version.DataFormat}
	if resp.StatusCode != 200 || vs != want || resp.Header.Get("X-Etcd-Cluster-ID") != "ab" {
		t.Errorf("%d %+v cluster %q, want 200 %+v cluster ab", resp.StatusCode, vs, resp.Header.Get("X-Etcd-Cluster-ID"), want)
	}
	srv.Client().CloseIdleConnections()
}
