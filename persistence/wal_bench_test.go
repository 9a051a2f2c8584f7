package persistence

import (
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkWALAppend measures the wal actor making appends of one 100-byte
// entry durable, on a real WAL in a temp dir:
//
//   - serial: each append waits for the previous one's response, so every
//     append pays a whole fsync (a single client's view);
//   - queued: all appends are sent at once, so appends that arrive while a
//     group is written share the next fsync (group commit).
//
// ns/op is per append; the fsync-groups metric is how many Saves were made.
func BenchmarkWALAppend(b *testing.B) {
	for _, mode := range []string{"serial", "queued"} {
		b.Run(mode, func(b *testing.B) {
			sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
			defer sys.Shutdown()
			rp, err := Open(nil, b.TempDir(), Metadata{NodeID: 1, ClusterID: 1})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan int, 1024)
			saves := &countingLog{Log: rp.WAL}
			pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
				return NewWALActor(WALConfig{
					Log:     saves,
					Storage: rp.Storage,
					Deliver: func(msgs []*raftpb.Message) { done <- len(msgs) },
				})
			}))
			defer func() { _ = sys.Root.StopFuture(pid).Wait() }()

			data := make([]byte, 100)
			appendMsg := func(i int) *raftpb.Message {
				idx := uint64(i + 1)
				return &raftpb.Message{
					Type: raftpb.MsgStorageAppend.Enum(), To: new(raft.LocalAppendThread),
					Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(idx - 1),
					Entries:   []*raftpb.Entry{{Index: new(idx), Term: new(uint64(1)), Type: raftpb.EntryNormal.Enum(), Data: data}},
					Responses: []*raftpb.Message{{Type: raftpb.MsgStorageAppendResp.Enum(), To: new(uint64(1)), Index: new(idx), LogTerm: new(uint64(1))}},
				}
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			if mode == "serial" {
				for i := range b.N {
					sys.Root.Send(pid, appendMsg(i))
					<-done
				}
			} else {
				go func() {
					for i := range b.N {
						sys.Root.Send(pid, appendMsg(i))
					}
				}()
				for got := 0; got < b.N; got += <-done {
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(saves.n.Load()), "fsync-groups")
		})
	}
}

// countingLog counts Saves: one per group the wal actor writes.
type countingLog struct {
	Log
	n atomic.Int64
}

func (l *countingLog) Save(st *raftpb.HardState, ents []*raftpb.Entry) error {
	l.n.Add(1)
	return l.Log.Save(st, ents)
}
