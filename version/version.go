// Package version owns what a member says of its own version: the
// server's version and the git revision it was built from (Version,
// Revision), the Go toolchain that built it, and the data format it
// writes (DataFormat). A release build sets Version and Revision with
//
//	go build -ldflags "-X github.com/raftkv/node/version.Version=v1.2.0 -X github.com/raftkv/node/version.Revision=$(git rev-parse HEAD)" ./cmd/node
//
// and any other build takes them from the module's build information: the
// pseudo-version and revision that `go build -buildvcs=true` stamps in a
// git checkout, or Devel and Unknown when nothing was stamped (a test
// binary, or GOFLAGS=-buildvcs=false). The cluster's version, the lowest
// of its members', is the HTTP API's to learn (httpapi's /version), since
// it takes asking the other members.
package version

import (
	"cmp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/raftkv/node/kv/store"
)

// DataFormat names the format of the data dir this binary writes: the
// layout of its db (package store), which the db records. A binary opens a
// dir of this format or of an older one, upgrading the db in place, and
// refuses one of a newer format without touching it.
const DataFormat = store.Layout

// Devel is the version of a build that was stamped with none: not a
// release, and nothing says which commit it is.
const Devel = "devel"

// Unknown is the revision of a build that was stamped with none.
const Unknown = "unknown"

// Version and Revision are this build's, set with -ldflags -X or, when
// left empty, read from the build information at start.
var (
	Version  string
	Revision string
)

func init() {
	v, r := fromBuildInfo(debug.ReadBuildInfo())
	if Version == "" {
		Version = v
	}
	if Revision == "" {
		Revision = r
	}
}

// fromBuildInfo reads the main module's version and the VCS revision from
// what the go command stamped; "(devel)" is its word for no version.
func fromBuildInfo(bi *debug.BuildInfo, ok bool) (ver, rev string) {
	ver, rev = Devel, Unknown
	if !ok {
		return ver, rev
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		ver = v
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && rev != Unknown {
		rev += "-dirty"
	}
	return ver, rev
}

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// Lowest returns the lowest of versions and true, or "" and false when
// they cannot be ordered: none given, or two that differ where one is no
// semantic version (Devel, say). Pseudo-versions order by their time, so a
// build of an older commit is lower.
func Lowest(versions []string) (string, bool) {
	if len(versions) == 0 {
		return "", false
	}
	low := versions[0]
	for _, v := range versions[1:] {
		if v == low {
			continue
		}
		c, ok := compare(v, low)
		if !ok {
			return "", false
		}
		if c < 0 {
			low = v
		}
	}
	return low, true
}

// compare orders two semantic versions (vMAJOR.MINOR.PATCH, an optional
// -prerelease, an optional +build that does not count) as semver.org's
// rules do: -1, 0 or 1, and false when either is not one.
func compare(a, b string) (int, bool) {
	pa, ok1 := parse(a)
	pb, ok2 := parse(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	for i := range 3 {
		if c := cmp.Compare(pa.core[i], pb.core[i]); c != 0 {
			return c, true
		}
	}
	// A version with a prerelease is lower than the same one without.
	switch {
	case pa.pre == nil && pb.pre == nil:
		return 0, true
	case pa.pre == nil:
		return 1, true
	case pb.pre == nil:
		return -1, true
	}
	for i := 0; i < len(pa.pre) && i < len(pb.pre); i++ {
		if c := cmpIdent(pa.pre[i], pb.pre[i]); c != 0 {
			return c, true
		}
	}
	return cmp.Compare(uint64(len(pa.pre)), uint64(len(pb.pre))), true
}

type parsed struct {
	core [3]uint64
	pre  []string // nil: none
}

func parse(v string) (parsed, bool) {
	var p parsed
	rest, ok := strings.CutPrefix(v, "v")
	if !ok {
		return p, false
	}
	rest, _, _ = strings.Cut(rest, "+")
	rest, pre, hasPre := strings.Cut(rest, "-")
	nums := strings.Split(rest, ".")
	if len(nums) != 3 {
		return p, false
	}
	for i, n := range nums {
		x, ok := number(n)
		if !ok {
			return p, false
		}
		p.core[i] = x
	}
	if hasPre {
		p.pre = strings.Split(pre, ".")
		for _, id := range p.pre {
			if id == "" {
				return p, false
			}
		}
	}
	return p, true
}

// number reads a numeric identifier: digits, no leading zero.
func number(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var x uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' || x > (1<<63)/10 {
			return 0, false
		}
		x = x*10 + uint64(c-'0')
	}
	return x, true
}

// cmpIdent orders prerelease identifiers: numeric ones by value and below
// alphanumeric ones, those in ASCII order.
func cmpIdent(a, b string) int {
	na, aNum := number(a)
	nb, bNum := number(b)
	switch {
	case aNum && bNum:
		return cmp.Compare(na, nb)
	case aNum:
		return -1
	case bNum:
		return 1
	}
	return strings.Compare(a, b)
}

// String is the version as `node --version` prints it.
func String() string {
	var b strings.Builder
	b.WriteString("node version: " + Version + "\n")
	b.WriteString("git revision: " + Revision + "\n")
	b.WriteString("go version: " + GoVersion() + "\n")
	b.WriteString("data format: " + DataFormat + "\n")
	return b.String()
}
