// Package reqid owns the shape of request ids: the number a member gives
// each proposal so that the entry, once applied, answers the request that
// made it and no other, and so that a command proposed twice is applied
// once (package store's dedup records). The kv actor makes them (Gen); the
// store reads their prefix and counter; membership refuses two members
// whose ids would share a prefix (Shares).
package reqid

import "time"

// Gen makes request ids that are unique across the cluster and across
// restarts of this member, so that an applied entry settles only the request
// that proposed it: the top 16 bits are the member id's low 16 bits, the
// rest start at the current time in milliseconds (shifted to leave room for
// 256 ids a millisecond) and count up. This is the shape etcd gives its ids.
// An id is never 0, which stands for "no request" in entries that other
// members wrote (raftexample's carry no id at all).
//
// One member's ids thus come in the order they are made, modulo 2^48,
// across restarts too (SkipPast): the state machine relies on it to apply a
// command proposed twice only once (package store, dedup.go). A Gen is
// used by one goroutine, its owner's.
type Gen struct {
	prefix uint64
	next   uint64
}

// The layout: the proposer's prefix above SuffixBits, its counter below.
// Counters are compared serially (RFC 1982): a is behind b when
// (b-a)&SuffixMask < SerialHalf.
const (
	SuffixBits = 48
	SuffixMask = 1<<SuffixBits - 1
	SerialHalf = 1 << (SuffixBits - 1)
)

// Shares says whether members a and b, two ids, would make
// request ids of one prefix: the state machine could not tell their
// proposals apart, and would skip one member's writes as duplicates of the
// other's (package store). A cluster never holds two such members: cmd/node
// refuses them in --cluster, and a member add refuses them
// (messages.ErrIDPrefixInUse).
func Shares(a, b uint64) bool { return a != b && a&0xffff == b&0xffff }

// New returns member's generator, its counter starting at now.
func New(member uint64, now time.Time) *Gen {
	return &Gen{
		prefix: (member & 0xffff) << SuffixBits,
		next:   (uint64(now.UnixMilli()) << 8) & SuffixMask,
	}
}

// ID returns the next id.
func (g *Gen) ID() uint64 {
	g.next = (g.next + 1) & SuffixMask
	if g.prefix|g.next == 0 {
		g.next = 1 // only a member whose id has zero low bits can get here
	}
	return g.prefix | g.next
}

// SkipPast makes the ids to come follow id, if id is this member's and
// not behind the next one (serially, as the state machine compares them). A member restarts with its counter at the current time; id is
// the furthest of its ids the state applied, so a clock set back, or a
// counter that ran ahead of the clock, cannot make it reuse an id the
// state machine would take for one applied already.
func (g *Gen) SkipPast(id uint64) {
	if id&^SuffixMask != g.prefix {
		return
	}
	if n := id & SuffixMask; (n-g.next)&SuffixMask < SerialHalf {
		g.next = n
	}
}
