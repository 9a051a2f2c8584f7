package actors

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/persistence"
	"github.com/raftkv/node/transport"
)

// failingLog fails every Save once armed, as a full or broken disk would.
type failingLog struct {
	persistence.Log
	armed atomic.Bool
}

var errDiskGone = errors.New("disk gone")

func (l *failingLog) Save(st *raftpb.HardState, ents []*raftpb.Entry) error {
	if l.armed.Load() {
		return errDiskGone
	}
	return l.Log.Save(st, ents)
}

func startLoneNode(t *testing.T, dir string, wrap func(persistence.Log) persistence.Log) *Node {
	t.Helper()
	net := transport.NewNetwork()
	n, err := StartNode(NodeConfig{
		ID:           1,
		ClusterID:    1,
		Peers:        map[uint64]string{1: "http://127.0.0.1:1"},
		DataDir:      dir,
		TickInterval: 10 * time.Millisecond,
		Transport: func(env TransportEnv) (transport.Transport, error) {
			return net.JoinWith(1, env.Inbox, transport.MemoryOptions{SnapshotSource: env.SnapshotSource, SnapshotSink: env.SnapshotSink}), nil
		},
		wrapLog: wrap,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func put(n *Node, key string) (messages.Result, error) {
	res, err := n.Root().RequestFuture(n.KV(), messages.Put{Key: key, Value: []byte("v")}, 5*time.Second).Result()
	if err != nil {
		return messages.Result{}, err
	}
	return res.(messages.Result), nil
}

// A WAL write error stops the member with the error as the reason; the write
// that hit it is never acknowledged.
func TestWALErrorStopsTheMember(t *testing.T) {
	var fl failingLog
	n := startLoneNode(t, t.TempDir(), func(l persistence.Log) persistence.Log {
		fl.Log = l
		return &fl
	})
	defer n.Stop()

	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := put(n, "before")
		if err == nil && res.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful write before the fault: %v %v", err, res.Err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}

	fl.armed.Store(true)
	res, err := put(n, "after")
	if err == nil && res.Err == nil {
		t.Fatal("a write was acknowledged although the WAL failed")
	}
	select {
	case <-n.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("member did not stop after a WAL error")
	}
	var f messages.Fatal
	if !errors.As(n.Err(), &f) || f.Component != "wal" || !errors.Is(n.Err(), errDiskGone) {
		t.Fatalf("member stopped with %v, want a wal Fatal wrapping %v", n.Err(), errDiskGone)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("stop after fatal: %v", err)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

// Data written before a clean stop is there after a restart from the dir.
func TestNodeRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	n := startLoneNode(t, dir, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := put(n, "kept")
		if err == nil && res.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write: %v %v", err, res.Err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}

	n = startLoneNode(t, dir, nil)
	defer n.Stop()
	deadline = time.Now().Add(10 * time.Second)
	for {
		res, err := n.Root().RequestFuture(n.KV(), messages.Get{Key: "kept"}, 5*time.Second).Result()
		if err == nil && res.(messages.Result).Err == nil {
			if r := res.(messages.Result); !r.Found || string(r.Value) != "v" {
				t.Fatalf("after restart: found=%v value=%q", r.Found, r.Value)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read after restart: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}
