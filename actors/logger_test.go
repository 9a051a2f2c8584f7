package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/quorum"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/raftkv/node/messages"
)

func observed(level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	core, obs := observer.New(level)
	return zap.New(core), obs
}

// TestRaftLogger feeds the adapter raft's own format strings (copied from
// go.etcd.io/raft/v3, with the argument types raft passes) and checks the
// level and text of each line: ids in decimal, routine lines at debug.
func TestRaftLogger(t *testing.T) {
	voters := quorum.MajorityConfig{10: {}, 11: {}, 255: {}}
	cfg := tracker.Config{
		Voters:       quorum.JointConfig{voters, quorum.MajorityConfig{10: {}}},
		Learners:     map[uint64]struct{}{12: {}},
		LearnersNext: map[uint64]struct{}{16: {}},
		AutoLeave:    true,
	}
	type call func(l raftLogger)
	cases := []struct {
		name  string
		call  call
		level zapcore.Level
		want  string
	}{
		{
			name:  "became leader, demoted",
			call:  func(l raftLogger) { l.Infof("%x became leader at term %d", uint64(10), uint64(12)) },
			level: zapcore.DebugLevel,
			want:  "10 became leader at term 12",
		},
		{
			name:  "starting an election",
			call:  func(l raftLogger) { l.Infof("%x is starting a new election at term %d", uint64(11), uint64(7)) },
			level: zapcore.InfoLevel,
			want:  "11 is starting a new election at term 7",
		},
		{
			name: "received MsgTimeoutNow",
			call: func(l raftLogger) {
				l.Infof("%x [term %d] received MsgTimeoutNow from %x and starts an election to get leadership.", uint64(2), uint64(2), uint64(17))
			},
			level: zapcore.InfoLevel,
			want:  "2 [term 2] received MsgTimeoutNow from 17 and starts an election to get leadership.",
		},
		{
			name: "node.go elected leader",
			call: func(l raftLogger) {
				l.Infof("raft.node: %x elected leader %x at term %d", uint64(10), uint64(255), uint64(3))
			},
			level: zapcore.InfoLevel,
			want:  "raft.node: 10 elected leader 255 at term 3",
		},
		{
			name: "vote cast, demoted",
			call: func(l raftLogger) {
				l.Infof("%x [logterm: %d, index: %d, vote: %x] cast %s for %x [logterm: %d, index: %d] at term %d",
					uint64(11), uint64(2), uint64(30), uint64(0), raftpb.MsgVote, uint64(26), uint64(2), uint64(31), uint64(3))
			},
			level: zapcore.DebugLevel,
			want:  "11 [logterm: 2, index: 30, vote: 0] cast MsgVote for 26 [logterm: 2, index: 31] at term 3",
		},
		{
			name:  "missing from unstable log, demoted",
			call:  func(l raftLogger) { l.Infof("entry at index %d missing from unstable log; ignoring", uint64(4711)) },
			level: zapcore.DebugLevel,
			want:  "entry at index 4711 missing from unstable log; ignoring",
		},
		{
			name: "cannot campaign, demoted from warning",
			call: func(l raftLogger) {
				l.Warningf("%x cannot campaign at term %d since there are still pending configuration changes to apply", uint64(26), uint64(1))
			},
			level: zapcore.DebugLevel,
			want:  "26 cannot campaign at term 1 since there are still pending configuration changes to apply",
		},
		{
			name: "mismatched with unstable log, demoted",
			call: func(l raftLogger) {
				l.Infof("entry at (index,term)=(%d,%d) mismatched with "+
					"entry at (%d,%d) in unstable log; ignoring", uint64(5), uint64(2), uint64(5), uint64(3))
			},
			level: zapcore.DebugLevel,
			want:  "entry at (index,term)=(5,2) mismatched with entry at (5,3) in unstable log; ignoring",
		},
		{
			name: "a debug line stays debug",
			call: func(l raftLogger) {
				l.Debugf("%x failed to send message to %x because it is unreachable [%s]", uint64(10), uint64(11), &tracker.Progress{Match: 7, Next: 8, Inflights: tracker.NewInflights(1, 0)})
			},
			level: zapcore.DebugLevel,
			want:  "10 failed to send message to 11 because it is unreachable [StateProbe match=7 next=8 inactive]",
		},
		{
			name:  "configuration",
			call:  func(l raftLogger) { l.Infof("%x switched to configuration %s", uint64(255), cfg) },
			level: zapcore.DebugLevel,
			want:  "255 switched to configuration voters=(10 11 255)&&(10) learners=(12) learners_next=(16) autoleave",
		},
		{
			name: "configuration as %v with an error",
			call: func(l raftLogger) {
				l.Debugf("not initiating automatic transition out of joint configuration %s: %v", cfg, errors.New("busy"))
			},
			level: zapcore.DebugLevel,
			want:  "not initiating automatic transition out of joint configuration voters=(10 11 255)&&(10) learners=(12) learners_next=(16) autoleave: busy",
		},
		{
			name: "newRaft peers",
			call: func(l raftLogger) {
				l.Infof("newRaft %x [peers: [%s], term: %d, commit: %d, applied: %d, lastindex: %d, lastterm: %d]",
					uint64(26), "a,b,1a", uint64(1), uint64(2), uint64(3), uint64(4), uint64(5))
			},
			level: zapcore.DebugLevel,
			want:  "newRaft 26 [peers: [10,11,26], term: 1, commit: 2, applied: 3, lastindex: 4, lastterm: 5]",
		},
		{
			name: "transfer to the same node",
			call: func(l raftLogger) {
				l.Infof("%x [term %d] transfer leadership to %x is in progress, ignores request to same node %x",
					uint64(10), uint64(4), uint64(11), uint64(11))
			},
			level: zapcore.InfoLevel,
			want:  "10 [term 4] transfer leadership to 11 is in progress, ignores request to same node 11",
		},
		{
			name: "conf state as %v",
			call: func(l raftLogger) {
				l.Warningf("%x attempted to restore snapshot but it is not in the ConfState %v; should never happen",
					uint64(12), &raftpb.ConfState{Voters: []uint64{10, 11}})
			},
			level: zapcore.WarnLevel,
			want:  "12 attempted to restore snapshot but it is not in the ConfState voters:10 voters:11; should never happen",
		},
		{
			name:  "unformatted",
			call:  func(l raftLogger) { l.Error("ignoring MsgForgetLeader due to ReadOnlyLeaseBased") },
			level: zapcore.ErrorLevel,
			want:  "ignoring MsgForgetLeader due to ReadOnlyLeaseBased",
		},
		{
			name:  "%x on a value that is no uint64 is kept",
			call:  func(l raftLogger) { l.Infof("%x and 100%% of %05x", []byte{0xab}, uint64(10)) },
			level: zapcore.InfoLevel,
			want:  "ab and 100% of 00010",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lg, obs := observed(zapcore.DebugLevel)
			c.call(raftLogger{lg.Sugar()})
			all := obs.All()
			if len(all) != 1 {
				t.Fatalf("got %d lines", len(all))
			}
			// protobuf's text form varies its spacing on purpose: compare
			// words.
			if got := all[0]; got.Level != c.level || !sameWords(got.Message, c.want) {
				t.Errorf("got %v %q\nwant %v %q", got.Level, got.Message, c.level, c.want)
			}
		})
	}
}

func sameWords(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

// TestRaftLoggerSkipsDisabledLevels: at info, a demoted line is not written.
func TestRaftLoggerSkipsDisabledLevels(t *testing.T) {
	lg, obs := observed(zapcore.InfoLevel)
	l := raftLogger{lg.Sugar()}
	l.Infof("entry at index %d missing from unstable log; ignoring", uint64(1))
	l.Warningf("%x cannot campaign at term %d since there are still pending configuration changes to apply", uint64(1), uint64(1))
	l.Debugf("%x ignoring MsgHup because already leader", uint64(1))
	if n := obs.Len(); n != 0 {
		t.Fatalf("wrote %d lines at info: %v", n, obs.All())
	}
}

func TestRaftLoggerPanic(t *testing.T) {
	lg, obs := observed(zapcore.DebugLevel)
	l := raftLogger{lg.Sugar()}
	defer func() {
		r := recover()
		want := "10 state.commit 7 is out of range [8, 9]"
		if r != want {
			t.Errorf("panic %v, want %q", r, want)
		}
		if all := obs.All(); len(all) != 1 || all[0].Level != zapcore.ErrorLevel || all[0].Message != want {
			t.Errorf("logged %v", all)
		}
	}()
	l.Panicf("%x state.commit %d is out of range [%d, %d]", uint64(10), uint64(7), uint64(8), uint64(9))
}

// TestRaftLoggerRealRaft runs raft itself with the adapter: a one-member
// raft with id 255 (ff in hex) elects itself. Its lines give the id in
// decimal, never in hex.
func TestRaftLoggerRealRaft(t *testing.T) {
	lg, obs := observed(zapcore.DebugLevel)
	s := raft.NewMemoryStorage()
	if err := s.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: []uint64{255}}, Index: new(uint64(1)), Term: new(uint64(1)),
	}}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 255, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, PreVote: true, Logger: raftLogger{lg.Sugar()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	// The self-votes step in as each Ready is advanced.
	for i := 0; i < 10 && rn.HasReady(); i++ {
		rd := rn.Ready()
		if err := s.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		rn.Advance(rd)
	}
	if rn.BasicStatus().RaftState != raft.StateLeader {
		t.Fatalf("not leader: %v", rn.BasicStatus().RaftState)
	}
	var text []string
	for _, e := range obs.All() {
		text = append(text, e.Message)
		if strings.Contains(e.Message, "ff") {
			t.Errorf("hex id in %q", e.Message)
		}
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{"newRaft 255 [peers: [255], ", "255 became leader at term 1", "255 switched to configuration voters=(255)"} {
		if !strings.Contains(all, want) {
			t.Errorf("no line with %q in:\n%s", want, all)
		}
	}
}

// TestRaftDemotedFormatsExist checks the demoted formats against raft's
// source in the module cache, so that an upgrade of raft that rewords one
// does not quietly bring it back at info.
func TestRaftDemotedFormatsExist(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.etcd.io/raft/v3").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("raft's source not found: %v", err)
	}
	var src strings.Builder
	for _, f := range []string{"raft.go", "log.go", "log_unstable.go"} {
		b, err := os.ReadFile(dir + "/" + f)
		if err != nil {
			t.Skipf("raft's source not readable: %v", err)
		}
		src.Write(b)
	}
	// Join literals split with +, as raft does for long formats.
	joined := regexp.MustCompile(`"\s*\+\s*"`).ReplaceAllString(src.String(), "")
	for f := range raftDemoted {
		if !strings.Contains(joined, fmt.Sprintf("%q", f)) {
			t.Errorf("raft has no format %q", f)
		}
	}
}

// TestDeadLetterHidesTheMessage sends messages holding a user's value to
// actors that do not exist: the dead letters are logged at debug with the
// message's type and the target, never the message.
func TestDeadLetterHidesTheMessage(t *testing.T) {
	const secret = "the-users-secret-value"
	for _, level := range []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel} {
		t.Run(level.String(), func(t *testing.T) {
			lg, obs := observed(level)
			sys := newActorSystem(lg)
			defer sys.Shutdown()
			gone := sys.NewLocalPID("gone")
			// Delivery to a dead letter is synchronous: the line is
			// written before Send returns.
			sys.Root.Send(gone, messages.Put{Key: "k", Value: []byte(secret)})
			sys.Root.Send(gone, &raftpb.Message{Type: raftpb.MsgApp.Enum(), Entries: []*raftpb.Entry{{Data: []byte(secret)}}})
			// A request's dead letter answers the sender at once.
			_, err := sys.Root.RequestFuture(gone, messages.Propose{ID: 1, Data: []byte(secret)}, time.Minute).Result()
			if !errors.Is(err, actor.ErrDeadLetter) {
				t.Fatalf("request to a dead letter: %v", err)
			}
			var dead []observer.LoggedEntry
			for _, e := range obs.All() {
				if e.Level > zapcore.DebugLevel {
					t.Errorf("line at %v: %s %v", e.Level, e.Message, e.ContextMap())
				}
				if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, secret) {
					t.Errorf("the value reached the log: %s", line)
				}
				if e.Message == "dropped a message to a stopped or unknown actor" {
					dead = append(dead, e)
				}
			}
			if level > zapcore.DebugLevel {
				return
			}
			if len(dead) != 3 {
				t.Fatalf("%d dead letter lines, want 3: %v", len(dead), obs.All())
			}
			for i, want := range []string{"messages.Put", "raftpb.Message", "messages.Propose"} {
				m := dead[i].ContextMap()
				if m["message_type"] != want || m["to"] != "gone" {
					t.Errorf("dead letter %d: %v, want message_type %s to gone", i, m, want)
				}
				if dead[i].LoggerName != "protoactor" {
					t.Errorf("logger %q", dead[i].LoggerName)
				}
			}
			if m := dead[2].ContextMap(); m["from"] == nil || m["from"] == "" {
				t.Errorf("a request's dead letter names no sender: %v", m)
			}
		})
	}
}

// TestProtoactorFailureLines: protoactor's supervision lines keep a
// message's type and a reason's first bytes only.
func TestProtoactorFailureLines(t *testing.T) {
	lg, obs := observed(zapcore.DebugLevel)
	pl := protoactorLogger(lg)
	self := actor.NewPID("nonhost", "kv")
	secret := strings.Repeat("v", 2000)
	pl.Info("[ACTOR] Recovering", slog.Any("self", self), slog.Any("reason", errors.New("put: "+secret)))
	pl.Error("[Supervision]", slog.Any("actor", self), slog.Any("message", messages.Put{Key: "k", Value: []byte(secret)}), slog.Any("exception", secret))
	all := obs.All()
	if len(all) != 2 {
		t.Fatalf("%d lines", len(all))
	}
	if all[0].Level != zapcore.DebugLevel || all[0].ContextMap()["self"] != "kv" {
		t.Errorf("recovering: %v %v", all[0].Level, all[0].ContextMap())
	}
	for _, e := range all {
		for k, v := range e.ContextMap() {
			if s := fmt.Sprint(v); len(s) > 600 {
				t.Errorf("%s: %s is %d bytes long", e.Message, k, len(s))
			}
		}
	}
	if got := all[1].ContextMap()["message_type"]; got != "messages.Put" {
		t.Errorf("supervision message_type %v", got)
	}
}

func TestAskError(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&askError{what: "transfer leadership", actor: "raft", wait: 3 * time.Second, err: actor.ErrTimeout}, "transfer leadership: the raft actor did not answer within 3s"},
		{&askError{what: "stop watches", actor: "watch hub", wait: time.Second, err: actor.ErrDeadLetter}, "stop watches: the watch hub actor has stopped"},
		{&askError{what: "stop", actor: "kv", wait: 10 * time.Second, err: actor.ErrTimeout}, "the kv actor did not stop within 10s"},
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
		if strings.Contains(c.err.Error(), "future") {
			t.Errorf("%q names protoactor's future", c.err)
		}
	}
	if !errors.Is(cases[0].err, actor.ErrTimeout) {
		t.Error("askError does not wrap protoactor's error")
	}
}

func TestConfStateField(t *testing.T) {
	lg, obs := observed(zapcore.DebugLevel)
	lg.Info("x", confStateField(&raftpb.ConfState{Voters: []uint64{1, 2, 10}, Learners: []uint64{4}, AutoLeave: new(true)}))
	lg.Info("y", confStateField(&raftpb.ConfState{}))
	got := fmt.Sprint(obs.All()[0].ContextMap(), obs.All()[1].ContextMap())
	want := "map[auto_leave:true learners:[4] voters:[1 2 10]] map[voters:[]]"
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
