package transport

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/raftkv/node/messages"
)

// faults makes one actor of a peer panic on chosen raft messages, through
// the transport's tap, and counts the raft messages the peer actor has
// finished handling.
type faults struct {
	actor string                     // the actor that panics, by its name in props
	when  func(*raftpb.Message) bool // the messages it panics on
	// hold, when set, is waited for before the panic: what comes after the
	// message queues up behind it meanwhile.
	hold    chan struct{}
	release sync.Once
	handled atomic.Int64
}

func (f *faults) tap(actor string, msg any, next func()) {
	m, ok := msg.(*raftpb.Message)
	if ok && actor == f.actor && f.when(m) {
		if f.hold != nil {
			<-f.hold
		}
		panic(fmt.Sprintf("injected fault on %s at term %d", m.GetType(), m.GetTerm()))
	}
	next()
	if ok && actor == "peer" {
		f.handled.Add(1)
	}
}

// unhold lets the held panic happen; calling it again is safe.
func (f *faults) unhold() {
	if f.hold != nil {
		f.release.Do(func() { close(f.hold) })
	}
}

// supervisedMember is an httpMember whose peer actors fail as f says, with
// what its supervision does recorded: restarts counted, warnings kept,
// Fatal calls collected.
type supervisedMember struct {
	*httpMember
	restarts *prometheus.CounterVec
	logs     *observer.ObservedLogs

	mu     sync.Mutex
	fatals []messages.Fatal
}

func newSupervisedMember(t *testing.T, id uint64, f *faults, inbox *wireRecorder, configure func(*HTTPConfig)) *supervisedMember {
	t.Helper()
	core, logs := observer.New(zap.WarnLevel)
	s := &supervisedMember{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "restarts_total"}, []string{"actor"}),
		logs:     logs,
	}
	s.httpMember = newHTTPMemberWith(t, id, inbox, func(c *HTTPConfig) {
		c.Logger = zap.New(zapcore.NewTee(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core(), core)).With(zap.Uint64("member", id))
		c.Restarts = s.restarts
		c.Fatal = func(f messages.Fatal) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.fatals = append(s.fatals, f)
		}
		if configure != nil {
			configure(c)
		}
	}, func(h *HTTP) { h.tap = f.tap })
	// Registered after the member's cleanup, so it runs first: Close waits
	// for an actor held in the tap.
	t.Cleanup(f.unhold)
	return s
}

func (s *supervisedMember) fatalCalls() []messages.Fatal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.fatals)
}

func (s *supervisedMember) restartCount() float64 {
	return testutil.ToFloat64(s.restarts.WithLabelValues("peer"))
}

// restartLines are the warnings that a peer actor was restarted.
func (s *supervisedMember) restartLines() []observer.LoggedEntry {
	return s.logs.FilterMessage("an actor panicked; restarted it").All()
}

func hasTerm(term uint64) func(*raftpb.Message) bool {
	return func(m *raftpb.Message) bool { return m.GetTerm() == term }
}

// TestPeerActorRestartsWithFreshConnections: a panic in a peer actor or in
// its pipeline restarts the peer actor under the same PID, with a new
// connection for what follows. The message it panicked on, and what queued
// behind it in the pipeline, are lost and reported (a snapshot among them as
// failed); what waited in the peer actor's own mailbox is sent after the
// restart. Either way the peer's queue count comes back to zero.
func TestPeerActorRestartsWithFreshConnections(t *testing.T) {
	snapshot := wireSnapshot(1, 2)
	snapshot.Term = new(uint64(2))
	tests := []struct {
		name    string
		actor   string          // which actor panics, on the message of term 2
		failing *raftpb.Message // the message of term 2
		// queuedLost: messages 3 to 5 wait in the pipeline's mailbox and are
		// lost with it; otherwise they wait in the peer actor's, and the
		// next life sends them.
		queuedLost  bool
		wantReports []any
	}{
		{"peer actor", "peer", wireHeartbeat(1, 2, 2), false,
			[]any{messages.ReportUnreachable{ID: 2}}},
		{"pipeline", "pipeline", wireHeartbeat(1, 2, 2), true,
			[]any{messages.ReportUnreachable{ID: 2}}},
		{"pipeline sending a snapshot", "pipeline", snapshot, true,
			[]any{messages.ReportUnreachable{ID: 2}, messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFailure}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &faults{actor: tc.actor, when: hasTerm(2)}
			if tc.queuedLost {
				f.hold = make(chan struct{})
			}
			a := newSupervisedMember(t, 1, f, &wireRecorder{}, nil)
			b := newHTTPMember(t, 2, nil)
			a.tr.AddPeer(2, b.srv.URL)
			b.tr.AddPeer(1, "") // b never dials a: everything a sends goes by pipeline

			a.tr.Send([]*raftpb.Message{wireHeartbeat(1, 2, 1)})
			b.inbox.waitMessage(t, hasTerm(1))
			before := b.pipelineFrom.all()
			p, _ := a.tr.peer(2)
			pid := p.pid
			proc, _ := a.tr.cfg.System.ProcessRegistry.GetLocal(pid.Id)

			a.tr.Send([]*raftpb.Message{tc.failing, wireHeartbeat(1, 2, 3), wireHeartbeat(1, 2, 4), wireHeartbeat(1, 2, 5)})
			if tc.queuedLost {
				// Every message has gone past the peer actor to the
				// pipeline, held on the one of term 2.
				waitUntil(t, "the peer actor to hand on messages 1 to 5", func() bool { return f.handled.Load() == 5 })
				f.unhold()
			}
			waitUntil(t, "the restart", func() bool { return a.restartCount() == 1 })
			for _, want := range tc.wantReports {
				a.inbox.wait(t, func(m any) bool { return m == want })
			}

			a.tr.Send([]*raftpb.Message{wireHeartbeat(1, 2, 6)})
			b.inbox.waitMessage(t, hasTerm(6))
			after := b.pipelineFrom.all()[len(before):]
			if len(after) == 0 {
				t.Fatal("nothing came by pipeline after the restart")
			}
			for _, addr := range after {
				if slices.Contains(before, addr) {
					t.Fatalf("a message after the restart came over a connection of before it (%s; before: %v)", addr, before)
				}
			}
			for term := uint64(2); term <= 5; term++ {
				delivered := b.inbox.has(hasTerm(term))
				if want := term > 2 && !tc.queuedLost; delivered != want {
					t.Errorf("message of term %d delivered: %v, want %v", term, delivered, want)
				}
			}

			// The map names the same PID, and it is the same process,
			// mailbox and all: protoactor restarts an actor in place.
			if p2, _ := a.tr.peer(2); p2 == nil || !p2.pid.Equal(pid) {
				t.Fatalf("the peer's PID after the restart: %v, want %v", p2, pid)
			}
			if proc2, ok := a.tr.cfg.System.ProcessRegistry.GetLocal(pid.Id); !ok || proc2 != proc {
				t.Fatal("the peer's process was replaced")
			}
			waitUntil(t, "the peer's queue to empty", func() bool { return p.queued.Load() == 0 })

			lines := a.restartLines()
			if len(lines) != 1 {
				t.Fatalf("%d restart lines, want 1: %v", len(lines), lines)
			}
			fields := lines[0].ContextMap()
			if fields["actor"] != "peer" || fields["peer"] != uint64(2) || fields["failed"] != tc.actor ||
				!strings.Contains(fmt.Sprint(fields["panic"]), "injected fault") || fields["rebuilt"] != restartRebuilt {
				t.Fatalf("restart line %v: want peer 2, its %s failed, the panic and how it was rebuilt", fields, tc.actor)
			}
			if got := a.fatalCalls(); len(got) != 0 {
				t.Fatalf("Fatal called within the restart budget: %v", got)
			}
		})
	}
}

// TestPeerActorPastRestartBudgetStopsTheMember: a peer actor that panics on
// every message is restarted peerRestartLimit times, then stopped, with one
// call of Fatal that names it; what was still queued for it is never
// handled.
func TestPeerActorPastRestartBudgetStopsTheMember(t *testing.T) {
	f := &faults{actor: "peer", when: func(*raftpb.Message) bool { return true }}
	a := newSupervisedMember(t, 1, f, &wireRecorder{}, nil)
	b := newHTTPMember(t, 2, nil)
	a.tr.AddPeer(2, b.srv.URL)
	p, _ := a.tr.peer(2)

	var msgs []*raftpb.Message
	for term := range uint64(peerRestartLimit + 3) {
		msgs = append(msgs, wireHeartbeat(1, 2, term+1))
	}
	a.tr.Send(msgs)
	waitUntil(t, "the peer actor to stop", func() bool {
		_, alive := a.tr.cfg.System.ProcessRegistry.GetLocal(p.pid.Id)
		return !alive
	})
	// Stopped, the actor takes nothing more: these go to dead letters.
	a.tr.Send([]*raftpb.Message{wireHeartbeat(1, 2, 10)})

	fatals := a.fatalCalls()
	if len(fatals) != 1 {
		t.Fatalf("Fatal called %d times, want once: %v", len(fatals), fatals)
	}
	if f := fatals[0]; f.Component != "transport" || !errors.Is(f, errRestartBudget) || !strings.Contains(f.Error(), "peer 2") {
		t.Fatalf("Fatal(%v), want the transport's, naming peer 2, wrapping %v", f, errRestartBudget)
	}
	if got := a.restartCount(); got != peerRestartLimit {
		t.Fatalf("%v restarts counted, want %d", got, peerRestartLimit)
	}
	if n := len(a.restartLines()); n != peerRestartLimit {
		t.Fatalf("%d restart lines, want %d", n, peerRestartLimit)
	}
	if b.inbox.has(func(*raftpb.Message) bool { return true }) {
		t.Fatalf("the peer got messages: %v", b.inbox.all())
	}
}

// TestStreamReaderPanicRestartsThePeer: a panic on a stream reader's
// goroutine, where what the peer sends is decoded and delivered, reaches
// supervision instead of ending the process: the peer actor restarts, and
// its new readers dial the peer again.
func TestStreamReaderPanicRestartsThePeer(t *testing.T) {
	inbox := &wireRecorder{}
	var panicked atomic.Bool
	a := newSupervisedMember(t, 1, &faults{}, inbox, func(c *HTTPConfig) {
		c.Inbox = func(m any) {
			if v, ok := m.(*raftpb.Message); ok && v.GetType() == raftpb.MsgVote && panicked.CompareAndSwap(false, true) {
				panic("injected fault in the inbox")
			}
			inbox.add(m)
		}
	})
	b := newHTTPMember(t, 2, nil)
	a.tr.AddPeer(2, b.srv.URL) // a dials b's streams: b's messages reach a only there
	b.tr.AddPeer(1, "")

	vote := &raftpb.Message{Type: raftpb.MsgVote.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(4))}
	waitUntil(t, "the restart", func() bool {
		if a.restartCount() == 1 {
			return true
		}
		b.tr.Send([]*raftpb.Message{vote})
		return false
	})
	lines := a.restartLines()
	if len(lines) != 1 || lines[0].ContextMap()["failed"] != "message reader" {
		t.Fatalf("restart lines %v, want one naming the message reader", lines)
	}
	b.sendUntil(t, wireHeartbeat(2, 1, 5), messageSent, a.httpMember)
	if got := a.fatalCalls(); len(got) != 0 {
		t.Fatalf("Fatal called within the restart budget: %v", got)
	}
}
