package membership_test

import (
	"strings"
	"testing"

	"github.com/raftkv/node/membership"
)

// The derivation is part of every data dir: a change to it would make
// every member refuse its own. The first vector is the id of the data dir
// in e2e/testdata/bigkey-96e1129.tgz, made by an earlier release.
func TestClusterID(t *testing.T) {
	one := map[uint64]string{1: "http://127.0.0.1:31379"}
	if got := membership.ClusterID(one, ""); got != 0xdb162b9f8ba9b584 {
		t.Fatalf("ClusterID(%v) = %x, want db162b9f8ba9b584 (the derivation changed)", one, got)
	}
	three := map[uint64]string{1: "http://a:1", 2: "http://b:2", 3: "http://c:3"}
	ids := map[uint64]string{}
	for _, c := range []struct {
		name  string
		peers map[uint64]string
		token string
	}{
		{"one member", one, ""},
		{"three members", three, ""},
		{"a token", three, "prod-1"},
		{"another token", three, "prod-2"},
		{"other ids", map[uint64]string{1: "http://a:1", 2: "http://b:2", 5: "http://c:3"}, ""},
		{"other URLs", map[uint64]string{1: "http://a:1", 2: "http://b:2", 3: "http://c:4"}, ""},
		// The token and the URLs are length-prefixed: moving bytes from
		// one to the other gives another id.
		{"token and URL run together", map[uint64]string{1: "x"}, "y"},
		{"the same bytes split elsewhere", map[uint64]string{1: "yx"}, ""},
	} {
		id := membership.ClusterID(c.peers, c.token)
		if id == 0 {
			t.Errorf("%s: id 0", c.name)
		}
		if other, dup := ids[id]; dup {
			t.Errorf("%s and %s have one id, %x", c.name, other, id)
		}
		ids[id] = c.name
		if again := membership.ClusterID(c.peers, c.token); again != id {
			t.Errorf("%s: %x, then %x", c.name, id, again)
		}
	}
	// One URL written two ways is one cluster: --cluster writes it in one
	// form before it is derived.
	a, err1 := membership.ParseCluster("http://a:022379", nil)
	b, err2 := membership.ParseCluster("http://a:22379/", nil)
	if err1 != nil || err2 != nil || membership.ClusterID(a, "") != membership.ClusterID(b, "") {
		t.Fatalf("one URL written two ways: %v (%v), %v (%v) give two ids", a, err1, b, err2)
	}
}

func TestParseClusterID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64 // 0: refused
	}{
		{"1000", 0x1000},
		{"db162b9f8ba9b584", 0xdb162b9f8ba9b584},
		{"ABC", 0xabc},
		{"6e6f6465", 0x6e6f6465},
		{"0", 0},
		{"", 0},
		{"xyz", 0},
		{"0x10", 0},
		{"1ffffffffffffffff", 0},
	} {
		got, err := membership.ParseClusterID(c.in)
		if got != c.want || (err == nil) != (c.want != 0) {
			t.Errorf("ParseClusterID(%q) = %x, %v; want %x", c.in, got, err, c.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "--cluster-id ") {
			t.Errorf("ParseClusterID(%q): %q does not name the flag", c.in, err)
		}
		if err == nil {
			if back, _ := membership.ParseClusterID(membership.FormatClusterID(got)); back != got {
				t.Errorf("%x written as %q reads back as %x", got, membership.FormatClusterID(got), back)
			}
		}
	}
}

// A data dir of another member, or of another cluster, is refused with one
// line saying what it holds, what the flags describe, and what to do.
func TestMismatchError(t *testing.T) {
	one := "http://a:1"
	created := membership.Origin{Member: 1, ClusterID: 0xaaa, Cluster: one}
	for _, c := range []struct {
		name         string
		stored, want membership.Origin
		says         []string
	}{
		{"another member", created, membership.Origin{Member: 2, ClusterID: 0xaaa, Cluster: one},
			[]string{"data dir d holds member 1 of cluster aaa, not member 2: give each member its own --data-dir"}},
		{"other members", created, membership.Origin{Member: 1, ClusterID: 0xbbb, Cluster: "http://a:1,http://b:2"},
			[]string{"data dir d holds member 1 of another cluster (cluster aaa, created with --cluster http://a:1), but the flags describe cluster bbb (--cluster http://a:1,http://b:2)",
				"restart it with the flags it was created with, or move the data dir away"}},
		{"another token", created, membership.Origin{Member: 1, ClusterID: 0xbbb, Cluster: one, Token: "prod"},
			[]string{"(--cluster http://a:1 --initial-cluster-token prod)", "restart it with the flags it was created with"}},
		{"a token it was created with", membership.Origin{Member: 1, ClusterID: 0xaaa, Cluster: one, Token: "prod"}, membership.Origin{Member: 1, ClusterID: 0xbbb, Cluster: one},
			[]string{"created with --cluster http://a:1 --initial-cluster-token prod)", "restart it with the flags it was created with"}},
		// Its members and token, but not its id: one given with
		// --cluster-id, or derived by an earlier version from a port
		// written with leading zeros.
		{"the same members under another id", membership.Origin{Member: 1, ClusterID: 0xaaa, Cluster: "http://a:01"}, membership.Origin{Member: 1, ClusterID: 0xbbb, Cluster: one},
			[]string{"under cluster aaa: restart it with --cluster-id aaa"}},
		{"joined", membership.Origin{Member: 1, ClusterID: 0xaaa, Joined: true}, membership.Origin{Member: 1, ClusterID: 0xbbb, Cluster: one},
			[]string{"(cluster aaa, which it joined)", "restart it with --join"}},
		{"an earlier version", membership.Origin{Member: 1, ClusterID: 0x6e6f6465}, membership.Origin{Member: 1, ClusterID: 0xbbb, Cluster: one},
			[]string{"(cluster 6e6f6465, created by an earlier version)", "start it with --cluster-id 6e6f6465"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := (&membership.MismatchError{DataDir: "d", Stored: c.stored, Want: c.want}).Error()
			if strings.Contains(got, "\n") {
				t.Errorf("%q is more than one line", got)
			}
			for _, s := range c.says {
				if !strings.Contains(got, s) {
					t.Errorf("%q does not say %q", got, s)
				}
			}
		})
	}
}
