package kv

import "time"

// reqIDGen makes request ids that are unique across the cluster and across
// restarts of this member, so that an applied entry settles only the request
// that proposed it: the top 16 bits are the member id's low 16 bits, the
// rest start at the current time in milliseconds (shifted to leave room for
// 256 ids a millisecond) and count up. This is the shape etcd gives its ids.
// An id is never 0, which stands for "no request" in entries that other
// members wrote (raftexample's carry no id at all).
//
// One member's ids thus come in the order they are made, modulo 2^48,
// across restarts too (skipPast): the state machine relies on it to apply a
// command proposed twice only once (dedup.go).
type reqIDGen struct {
	prefix uint64
	next   uint64
}

const (
	reqIDSuffixBits = 48
	reqIDSuffixMask = 1<<reqIDSuffixBits - 1
)

// SharesRequestIDs says whether members a and b, two ids, would make
// request ids of one prefix: the state machine could not tell their
// proposals apart, and would skip one member's writes as duplicates of the
// other's (dedup.go). A cluster never holds two such members: cmd/node
// refuses them in --cluster, and a member add refuses them
// (messages.ErrIDPrefixInUse).
func SharesRequestIDs(a, b uint64) bool { return a != b && a&0xffff == b&0xffff }

func newReqIDGen(member uint64, now time.Time) *reqIDGen {
	return &reqIDGen{
		prefix: (member & 0xffff) << reqIDSuffixBits,
		next:   (uint64(now.UnixMilli()) << 8) & reqIDSuffixMask,
	}
}

func (g *reqIDGen) id() uint64 {
	g.next = (g.next + 1) & reqIDSuffixMask
	if g.prefix|g.next == 0 {
		g.next = 1 // only a member whose id has zero low bits can get here
	}
	return g.prefix | g.next
}

// skipPast makes the ids to come follow id, if id is this member's and
// not behind the next one (serially, as the state machine compares them:
// dedup.go). A member restarts with its counter at the current time; id is
// the furthest of its ids the state applied, so a clock set back, or a
// counter that ran ahead of the clock, cannot make it reuse an id the
// state machine would take for one applied already.
func (g *reqIDGen) skipPast(id uint64) {
	if id&^reqIDSuffixMask != g.prefix {
		return
	}
	if n := id & reqIDSuffixMask; (n-g.next)&reqIDSuffixMask < serialHalf {
		g.next = n
	}
}
