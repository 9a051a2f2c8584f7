package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestFromBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, c := range []struct {
		name     string
		bi       *debug.BuildInfo
		ok       bool
		ver, rev string
	}{
		{name: "no build info", ok: false, ver: Devel, rev: Unknown},
		{name: "nothing stamped", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, ok: true, ver: Devel, rev: Unknown},
		{name: "a clean checkout", ok: true,
			bi:  &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207173904-7f79ba416d63"}, Settings: vcs("7f79ba416d631a9b118060f634660269af88b42b", "false")},
			ver: "v0.0.0-20261207173904-7f79ba416d63", rev: "7f79ba416d631a9b118060f634660269af88b42b"},
		{name: "a modified checkout", ok: true,
			bi:  &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207173904-7f79ba416d63+dirty"}, Settings: vcs("7f79ba4", "true")},
			ver: "v0.0.0-20261207173904-7f79ba416d63+dirty", rev: "7f79ba4-dirty"},
		{name: "a module at a release", ok: true, bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, ver: "v1.2.0", rev: Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			ver, rev := fromBuildInfo(c.bi, c.ok)
			if ver != c.ver || rev != c.rev {
				t.Errorf("got %q %q, want %q %q", ver, rev, c.ver, c.rev)
			}
		})
	}
}

func TestLowest(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string // "" for none
	}{
		{in: nil},
		{in: []string{Devel}, want: Devel},
		{in: []string{Devel, Devel}, want: Devel},
		{in: []string{Devel, "v1.0.0"}},
		{in: []string{"v1.0.0", "1.0.0"}},
		{in: []string{"v1.2.0", "v1.10.0", "v1.3.1"}, want: "v1.2.0"},
		{in: []string{"v2.0.0", "v1.99.99"}, want: "v1.99.99"},
		{in: []string{"v1.0.0", "v1.0.0-rc.1"}, want: "v1.0.0-rc.1"},
		{in: []string{"v1.0.0-rc.2", "v1.0.0-rc.10"}, want: "v1.0.0-rc.2"},
		{in: []string{"v1.0.0-rc.1", "v1.0.0-alpha"}, want: "v1.0.0-alpha"},
		{in: []string{"v1.0.0-1", "v1.0.0-alpha"}, want: "v1.0.0-1"},
		{in: []string{"v1.0.0-rc", "v1.0.0-rc.1"}, want: "v1.0.0-rc"},
		// Pseudo-versions: the commit's time orders them; +dirty does not count.
		{in: []string{"v0.0.0-20261207173904-7f79ba416d63+dirty", "v0.0.0-20261101000000-c82f4ab00000"}, want: "v0.0.0-20261101000000-c82f4ab00000"},
		{in: []string{"v1.2.1-0.20261207173904-7f79ba416d63", "v1.2.0"}, want: "v1.2.0"},
		{in: []string{"v1.2.1-0.20261207173904-7f79ba416d63", "v1.2.1"}, want: "v1.2.1-0.20261207173904-7f79ba416d63"},
		// Not versions.
		{in: []string{"v1.2", "v1.0.0"}},
		{in: []string{"v01.0.0", "v1.0.0"}},
		{in: []string{"v1.0.0-", "v1.0.0"}},
		{in: []string{"v1.0.0-a..b", "v1.0.0"}},
		{in: []string{"v99999999999999999999.0.0", "v1.0.0"}},
	} {
		got, ok := Lowest(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("Lowest(%q) = %q %v, want %q", c.in, got, ok, c.want)
		}
	}
}

func TestString(t *testing.T) {
	s := String()
	for _, want := range []string{"node version: " + Version + "\n", "git revision: " + Revision + "\n", "go version: go", "data format: raftkv-3\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, want it to hold %q", s, want)
		}
	}
}
