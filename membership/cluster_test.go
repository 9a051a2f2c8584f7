package membership_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/raftkv/node/kv/reqid"
	"github.com/raftkv/node/membership"
)

// --cluster numbers bare URLs 1..N and takes id=URL entries as given,
// each URL in membership's one form; the form a data dir records
// (FormatCluster) reads back to the same members, so a refusal that quotes
// it gives a flag that works.
func TestParseCluster(t *testing.T) {
	for _, c := range []struct {
		flag, canonical string
		want            map[uint64]string
	}{
		{"http://a:1", "http://a:1", map[uint64]string{1: "http://a:1"}},
		{"http://a:1, https://b:2", "http://a:1,https://b:2", map[uint64]string{1: "http://a:1", 2: "https://b:2"}},
		{"2=http://b:2,1=http://a:1", "http://a:1,http://b:2", map[uint64]string{1: "http://a:1", 2: "http://b:2"}},
		{"1=http://a:1,2=http://b:2,5=http://c:3", "1=http://a:1,2=http://b:2,5=http://c:3",
			map[uint64]string{1: "http://a:1", 2: "http://b:2", 5: "http://c:3"}},
		{"1= http://a:1 , 3=http://b:2", "1=http://a:1,3=http://b:2", map[uint64]string{1: "http://a:1", 3: "http://b:2"}},
		// Ports in decimal, a lone "/" dropped, the scheme lower-cased:
		// one URL has one spelling, as in a member add.
		{"http://a:022379,HTTP://b:2/", "http://a:22379,http://b:2", map[uint64]string{1: "http://a:22379", 2: "http://b:2"}},
		{"http://[::1]:02380", "http://[::1]:2380", map[uint64]string{1: "http://[::1]:2380"}},
		// Ids whose low 16 bits differ may be members together.
		{"1=http://a:1,65538=http://b:2", "1=http://a:1,65538=http://b:2", map[uint64]string{1: "http://a:1", 65538: "http://b:2"}},
		{"18446744073709551613=http://a:1", "18446744073709551613=http://a:1", map[uint64]string{membership.MaxID: "http://a:1"}},
	} {
		got, err := membership.ParseCluster(c.flag, reqid.Shares)
		if err != nil || !maps.Equal(got, c.want) {
			t.Errorf("ParseCluster(%q) = %v, %v; want %v", c.flag, got, err, c.want)
			continue
		}
		if f := membership.FormatCluster(got); f != c.canonical {
			t.Errorf("FormatCluster(%v) = %q, want %q", got, f, c.canonical)
		}
		if back, err := membership.ParseCluster(membership.FormatCluster(got), reqid.Shares); err != nil || !maps.Equal(back, got) {
			t.Errorf("%q read back as %v, %v", membership.FormatCluster(got), back, err)
		}
	}
}

// Each refusal is one line that names --cluster and what is wrong.
func TestParseClusterRefusals(t *testing.T) {
	for _, c := range []struct {
		flag, want string
	}{
		{"", `--cluster: "": scheme must be http or https`},
		{"not a url", `--cluster: "not a url": scheme must be http or https`},
		{"http://a", `--cluster: "http://a": want scheme://host:port, with a port from 1 to 65535`},
		{"http://a:1/path", `--cluster: "http://a:1/path": want scheme://host:port, with no path`},
		{"http://:1", `--cluster: "http://:1": want scheme://host:port, with a host`},
		{"http://a:1,http://a:1", "--cluster: http://a:1 is given twice"},
		{"http://a:1,http://a:01", "--cluster: http://a:1 is given twice"},
		{"1=http://a:1,2=http://a:1", "--cluster: http://a:1 is given twice"},
		{"1=http://a:1,http://b:1", "--cluster: give every entry as id=URL, or none"},
		{"0=http://a:1", `--cluster: "0=http://a:1": want id=URL with an id from 1 up`},
		{"x=http://a:1", `--cluster: "x=http://a:1": want id=URL with an id from 1 up`},
		{"0x10=http://a:1", "want id=URL with an id from 1 up"},
		{"18446744073709551614=http://a:1", "want id=URL with an id from 1 up"},
		{"1=http://a:1,1=http://b:1", "--cluster: id 1 is given twice"},
		{"1=http://a:1,65537=http://b:1", "--cluster: ids 1 and 65537 have the same low 16 bits, which request ids carry: choose another id"},
		{"1=http://a:1,2=", `--cluster: "": scheme must be http or https`},
		{"3=http://c:1,65537=http://b:1,1=http://a:1", "--cluster: ids 65537 and 1 have the same low 16 bits"},
	} {
		got, err := membership.ParseCluster(c.flag, reqid.Shares)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseCluster(%q) = %v, %v; want one line with %q", c.flag, got, err, c.want)
		}
	}
	// Without a conflict rule, only distinct ids are asked for.
	if _, err := membership.ParseCluster("1=http://a:1,65537=http://b:1", nil); err != nil {
		t.Errorf("ParseCluster with no conflict rule: %v", err)
	}
}
