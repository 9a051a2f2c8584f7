package cluster

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/messages"
)

// BenchmarkPut measures a durable write through the actors, in process:
// kv actor → raft actor → wal actor (fsync) → apply → answer, with 1, 16
// and 64 concurrent writers, on one member and on three over the in-memory
// network. The HTTP API is left out; cmd/bench measures the whole node.
// ns/op is per write across all writers, so 1e9/(ns/op) is writes/s.
func BenchmarkPut(b *testing.B) {
	for _, members := range []int{1, 3} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("members=%d/writers=%d", members, writers), func(b *testing.B) {
				benchPut(b, members, writers)
			})
		}
	}
}

func benchPut(b *testing.B, members, writers int) {
	c := newClusterOver(b, overMemory, members, func(cfg *actors.NodeConfig) {
		cfg.TickInterval = 100 * time.Millisecond // production timing: no spurious elections under load
	})
	node := c.Member(c.leader()).Node
	value := make([]byte, 100)
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Go(func() {
			for i := range n {
				key := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				res, err := node.Root().RequestFuture(node.KV(), messages.Put{Key: key, Value: value}, 5*time.Second).Result()
				if err == nil {
					err = res.(messages.Result).Err
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}
