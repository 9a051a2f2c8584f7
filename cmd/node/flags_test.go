package main

import (
	"maps"
	"testing"

	"github.com/raftkv/node/actors"
)

// --cluster numbers bare URLs 1..N and takes id=URL entries as given; the
// form a data dir records (actors.ClusterFlag) reads back to the same
// members, so a refusal that quotes it gives a flag that works.
func TestClusterFlag(t *testing.T) {
	for _, c := range []struct {
		flag, canonical string
		want            map[uint64]string
	}{
		{"http://a:1", "http://a:1", map[uint64]string{1: "http://a:1"}},
		{"http://a:1, https://b:2", "http://a:1,https://b:2", map[uint64]string{1: "http://a:1", 2: "https://b:2"}},
		{"2=http://b:2,1=http://a:1", "http://a:1,http://b:2", map[uint64]string{1: "http://a:1", 2: "http://b:2"}},
		{"1=http://a:1,2=http://b:2,5=http://c:3", "1=http://a:1,2=http://b:2,5=http://c:3",
			map[uint64]string{1: "http://a:1", 2: "http://b:2", 5: "http://c:3"}},
	} {
		got, err := parsePeers(c.flag)
		if err != nil || !maps.Equal(got, c.want) {
			t.Errorf("parsePeers(%q) = %v, %v; want %v", c.flag, got, err, c.want)
			continue
		}
		if f := actors.ClusterFlag(got); f != c.canonical {
			t.Errorf("ClusterFlag(%v) = %q, want %q", got, f, c.canonical)
		}
		if back, err := parsePeers(actors.ClusterFlag(got)); err != nil || !maps.Equal(back, got) {
			t.Errorf("%q read back as %v, %v", actors.ClusterFlag(got), back, err)
		}
	}
}
