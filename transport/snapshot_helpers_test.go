package transport

import (
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// genReader is a snapshot's data made as it is read: size bytes that depend
// only on their offset, so a test holds no copy of them and can hash them
// again. It can stop at holdAt until released (or closed), and fail at
// failAt, to cut a transfer at a chosen point.
type genReader struct {
	size, off int64
	holdAt    int64         // > 0: block there until release or Close
	holding   chan struct{} // closed when Read blocks at holdAt
	release   chan struct{}
	failAt    int64 // > 0: fail with errSourceBroken there
	closed    chan struct{}
	holdOnce  sync.Once
	closeOnce sync.Once
}

var (
	errSourceBroken = errors.New("test source broken")
	errSourceClosed = errors.New("test source closed")
	errDiskFull     = errors.New("test sink: disk full")
)

func newGen(size int64) *genReader {
	return &genReader{size: size, holding: make(chan struct{}), release: make(chan struct{}), closed: make(chan struct{})}
}

func genByte(i int64) byte {
	x := uint64(i) * 0x9E3779B97F4A7C15
	return byte(x>>56 ^ x>>23)
}

func (g *genReader) Read(b []byte) (int, error) {
	if g.isClosed() {
		return 0, errSourceClosed
	}
	if g.holdAt > 0 && g.off == g.holdAt {
		g.holdOnce.Do(func() { close(g.holding) })
		select {
		case <-g.release:
		case <-g.closed:
			return 0, errSourceClosed
		}
	}
	if g.failAt > 0 && g.off >= g.failAt {
		return 0, errSourceBroken
	}
	if g.off >= g.size {
		return 0, io.EOF
	}
	end := min(g.off+int64(len(b)), g.size)
	for _, stop := range []int64{g.holdAt, g.failAt} {
		if stop > g.off && stop < end {
			end = stop
		}
	}
	for i := g.off; i < end; i++ {
		b[i-g.off] = genByte(i)
	}
	n := end - g.off
	g.off = end
	return int(n), nil
}

// Close may come while a Read is held, as SnapshotSource allows.
func (g *genReader) Close() error {
	g.closeOnce.Do(func() { close(g.closed) })
	return nil
}

func (g *genReader) isClosed() bool {
	select {
	case <-g.closed:
		return true
	default:
		return false
	}
}

// genSum is the SHA-256 of the size bytes a genReader yields.
func genSum(t *testing.T, size int64) [sha256.Size]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, newGen(size)); err != nil {
		t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// genSource is a SnapshotSource of genReaders, each tuned by tune.
type genSource struct {
	size    int64
	tune    func(*genReader)
	openErr error

	mu     sync.Mutex
	opened []*genReader
}

func (s *genSource) open(*raftpb.Message) (io.ReadCloser, error) {
	if s.openErr != nil {
		return nil, s.openErr
	}
	g := newGen(s.size)
	if s.tune != nil {
		s.tune(g)
	}
	s.mu.Lock()
	s.opened = append(s.opened, g)
	s.mu.Unlock()
	return g, nil
}

func (s *genSource) all() []*genReader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*genReader(nil), s.opened...)
}

// sinkDone is what a hashSink logs just before it returns nil, so a test
// can see that the MsgSnap reached the inbox after it.
type sinkDone struct{ index uint64 }

// sinkCall is one call of a hashSink.
type sinkCall struct {
	index uint64
	n     int64
	sum   [sha256.Size]byte
	err   error
}

// hashSink is a SnapshotSink that keeps only a hash of what it reads.
type hashSink struct {
	log       func(any) // may be nil
	failAfter int64     // > 0: fail with errDiskFull after that many bytes
	leave     bool      // return nil without reading the data to its end
	// sampleHeap samples HeapInuse every few MiB read, into heapPeak.
	sampleHeap bool

	mu       sync.Mutex
	calls    []sinkCall
	heapPeak uint64
}

func (s *hashSink) sink(m *raftpb.Message, r io.Reader) error {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n, nextSample int64
	var err error
	if s.leave {
		buf = buf[:1] // one read of one byte, then return
	}
	for {
		k, rerr := r.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if s.sampleHeap && n >= nextSample {
			s.sample()
			nextSample += 2 << 20
		}
		if s.failAfter > 0 && n >= s.failAfter {
			err = errDiskFull
			break
		}
		if errors.Is(rerr, io.EOF) || s.leave {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	index := m.GetSnapshot().GetMetadata().GetIndex()
	s.mu.Lock()
	s.calls = append(s.calls, sinkCall{index: index, n: n, sum: [sha256.Size]byte(h.Sum(nil)), err: err})
	s.mu.Unlock()
	if err == nil && s.log != nil {
		s.log(sinkDone{index: index})
	}
	return err
}

func (s *hashSink) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	s.heapPeak = max(s.heapPeak, ms.HeapInuse)
	s.mu.Unlock()
}

func (s *hashSink) all() []sinkCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkCall(nil), s.calls...)
}

// waitCall waits for the sink's first call to end.
func (s *hashSink) waitCall(t *testing.T) sinkCall {
	t.Helper()
	waitUntil(t, "the sink to return", func() bool { return len(s.all()) > 0 })
	return s.all()[0]
}

// snapMsg is a MsgSnap that carries metadata only: its data goes after it.
func snapMsg(from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(), From: new(from), To: new(to), Term: new(uint64(4)),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: new(index), Term: new(uint64(4)),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
		}},
	}
}
