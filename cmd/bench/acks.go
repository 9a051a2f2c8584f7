package main

import (
	"sync/atomic"
	"time"
)

// An ackLog is one watch writer's record of its acknowledged PUTs: for the
// seq-th, the revision the node answered and when the answer came. The
// writer fills it in as its answers come; every watcher reads it for each
// event it receives. Entries are written once, so after the first read of
// a chunk the watchers' reads hit their own caches. It is two-level so that
// a writer allocates as it goes and a reader never sees a slice grow.
const (
	ackChunkBits = 12
	ackChunkSize = 1 << ackChunkBits // writes per chunk
	ackDirSize   = 1 << 12           // chunks per writer
	// ackCapacity is the PUTs one writer can make in a watch run: a
	// writer that reaches it stops.
	ackCapacity = ackChunkSize * ackDirSize
)

type ackEntry struct {
	at  atomic.Int64 // since the run's epoch, in ns; 0: not acknowledged
	rev atomic.Uint64
}

type ackChunk [ackChunkSize]ackEntry

type ackLog struct {
	epoch time.Time // shared by every log of the run
	// issued is how many PUTs the writer has sent or is sending: a key of
	// a higher seq is not one of its writes. On a cache line of its own,
	// since the writer bumps it while the watchers read the chunks.
	_      [64]byte
	issued atomic.Uint64
	_      [56]byte
	maxRev uint64 // of the acknowledged writes; the writer's, read after it is done
	dir    [ackDirSize]atomic.Pointer[ackChunk]
}

func newAckLog(epoch time.Time) *ackLog { return &ackLog{epoch: epoch} }

// since is t on the run's clock, in ns, never 0 (0 marks no answer).
func (l *ackLog) since(t time.Time) int64 { return max(int64(t.Sub(l.epoch)), 1) }

// record notes the acknowledgement of the seq-th PUT at revision rev.
func (l *ackLog) record(seq, rev uint64, at time.Time) {
	c := l.dir[seq>>ackChunkBits].Load()
	if c == nil {
		c = new(ackChunk)
		l.dir[seq>>ackChunkBits].Store(c)
	}
	e := &c[seq&(ackChunkSize-1)]
	e.rev.Store(rev)
	e.at.Store(l.since(at)) // last: a reader that sees the time sees the revision
	l.maxRev = max(l.maxRev, rev)
}

// lookup returns when the seq-th PUT was acknowledged and at which
// revision; at is 0 when it has not been (yet).
func (l *ackLog) lookup(seq uint64) (at int64, rev uint64) {
	if seq >= ackCapacity {
		return 0, 0
	}
	c := l.dir[seq>>ackChunkBits].Load()
	if c == nil {
		return 0, 0
	}
	e := &c[seq&(ackChunkSize-1)]
	if at = e.at.Load(); at == 0 {
		return 0, 0
	}
	return at, e.rev.Load()
}

// ackedBits is the set of acknowledged seqs, for the final count.
func (l *ackLog) ackedBits() []uint64 {
	n := l.issued.Load()
	bits := make([]uint64, (n+63)/64)
	for seq := range n {
		if at, _ := l.lookup(seq); at != 0 {
			bits[seq/64] |= 1 << (seq % 64)
		}
	}
	return bits
}
