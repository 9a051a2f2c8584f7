package kv

import "time"

// reqIDGen makes request ids that are unique across the cluster and across
// restarts of this member, so that an applied entry settles only the request
// that proposed it: the top 16 bits are the member id's low 16 bits, the
// rest start at the current time in milliseconds (shifted to leave room for
// 256 ids a millisecond) and count up. This is the shape etcd gives its ids.
// An id is never 0, which stands for "no request" in entries that other
// members wrote (raftexample's carry no id at all).
type reqIDGen struct {
	prefix uint64
	next   uint64
}

const (
	reqIDSuffixBits = 48
	reqIDSuffixMask = 1<<reqIDSuffixBits - 1
)

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
