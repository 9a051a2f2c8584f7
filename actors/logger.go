package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/quorum"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/raftkv/node/internal/redact"
)

// raftLogger adapts zap to raft.Logger. raft calls Panic and Fatal on broken
// invariants and expects them not to return: both panic, and the actor
// supervision turns that panic into a stop of the member with the message.
//
// It rewrites raft's lines for operators: member ids, which raft prints in
// hex (%x, and in configurations such as "voters=(1 2 3)"), come out in
// decimal, as everywhere else in the member's log; and raft's routine lines
// (raftDemoted) go to debug. raft's lines hold no user data: raft never logs
// an entry's payload.
type raftLogger struct{ s *zap.SugaredLogger }

// raftDemoted are raft's format strings (go.etcd.io/raft/v3) logged at info
// or warning that are routine for this member, and the level they get.
var raftDemoted = map[string]zapcore.Level{
	// log_unstable.go: with AsyncStorageWrites, a WAL write acknowledged
	// after raft already moved the entries on; about ten a second under load.
	"entry at index %d missing from unstable log; ignoring":                                    zapcore.DebugLevel,
	"entry at index %d matched unstable snapshot; ignoring":                                    zapcore.DebugLevel,
	"entry at (index,term)=(%d,%d) mismatched with entry at (%d,%d) in unstable log; ignoring": zapcore.DebugLevel,
	"replace the unstable entries from index %d":                                               zapcore.DebugLevel,
	"truncate the unstable entries before index %d":                                            zapcore.DebugLevel,
	"found conflict at index %d [existing term: %d, conflicting term: %d]":                     zapcore.DebugLevel,
	// raft.go: a fresh member's bootstrap conf changes are not applied yet
	// when its first election timeout fires.
	"%x cannot campaign at term %d since there are still pending configuration changes to apply": zapcore.DebugLevel,
	// raft.go: the start of a member. The actor logs "member started".
	"newRaft %x [peers: [%s], term: %d, commit: %d, applied: %d, lastindex: %d, lastterm: %d]": zapcore.DebugLevel,
	// raft.go: a configuration raft switches to. The actor logs each conf
	// change it applies ("applied conf change"), with the configuration.
	"%x switched to configuration %s": zapcore.DebugLevel,
	// raft.go: the steps of an election. What an operator wants, the new
	// leader and the term, the actor logs ("leader changed"); raft's "is
	// starting a new election" stays at info, to say this member began one.
	"%x became follower at term %d":  zapcore.DebugLevel,
	"%x became candidate at term %d": zapcore.DebugLevel,
	"%x became leader at term %d":    zapcore.DebugLevel,
	// raft.go: a leadership transfer, which the actor logs
	// ("transferring leadership", "leadership transferred").
	"%x [term %d] starts to transfer leadership to %x":                                                                                         zapcore.DebugLevel,
	"%x sends MsgTimeoutNow to %x immediately as %x already has up-to-date log":                                                                zapcore.DebugLevel,
	"%x sent MsgTimeoutNow to %x after received MsgAppResp":                                                                                    zapcore.DebugLevel,
	"%x [logterm: %d, index: %d] sent %s request to %x at term %d":                                                                             zapcore.DebugLevel,
	"%x received %s from %x at term %d":                                                                                                        zapcore.DebugLevel,
	"%x received %s rejection from %x at term %d":                                                                                              zapcore.DebugLevel,
	"%x has received %d %s votes and %d vote rejections":                                                                                       zapcore.DebugLevel,
	"%x [logterm: %d, index: %d, vote: %x] cast %s for %x [logterm: %d, index: %d] at term %d":                                                 zapcore.DebugLevel,
	"%x [logterm: %d, index: %d, vote: %x] rejected %s from %x [logterm: %d, index: %d] at term %d":                                            zapcore.DebugLevel,
	"%x [term: %d] received a %s message with higher term from %x [term: %d]":                                                                  zapcore.DebugLevel,
	"%x [term: %d] ignored a %s message with lower term from %x [term: %d]":                                                                    zapcore.DebugLevel,
	"%x [term: %d] ignored entry appends from a %s message with lower term [term: %d]":                                                         zapcore.DebugLevel,
	"%x became pre-candidate at term %d":                                                                                                       zapcore.DebugLevel,
	"%x no leader at term %d; dropping proposal":                                                                                               zapcore.DebugLevel,
	"%x no leader at term %d; dropping index reading msg":                                                                                      zapcore.DebugLevel,
	"%x not forwarding to leader %x at term %d; dropping proposal":                                                                             zapcore.DebugLevel,
	"%x [logterm: %d, index: %d, vote: %x] ignored %s from %x [logterm: %d, index: %d] at term %d: lease is not expired (remaining ticks: %d)": zapcore.DebugLevel,
}

func (l raftLogger) Debug(v ...any) { l.print(zapcore.DebugLevel, v) }
func (l raftLogger) Debugf(format string, v ...any) {
	l.printf(zapcore.DebugLevel, format, v)
}
func (l raftLogger) Info(v ...any) { l.print(zapcore.InfoLevel, v) }
func (l raftLogger) Infof(format string, v ...any) {
	l.printf(zapcore.InfoLevel, format, v)
}
func (l raftLogger) Warning(v ...any) { l.print(zapcore.WarnLevel, v) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.printf(zapcore.WarnLevel, format, v)
}
func (l raftLogger) Error(v ...any) { l.print(zapcore.ErrorLevel, v) }
func (l raftLogger) Errorf(format string, v ...any) {
	l.printf(zapcore.ErrorLevel, format, v)
}
func (l raftLogger) Fatal(v ...any)                 { l.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...any) { l.Panicf(format, v...) }
func (l raftLogger) Panic(v ...any) {
	msg := redact.Text(fmt.Sprint(v...), 0)
	l.s.Desugar().WithOptions(zap.AddCallerSkip(1)).Error(msg)
	panic(msg)
}
func (l raftLogger) Panicf(format string, v ...any) {
	format, v = raftDecimal(format, v)
	msg := redact.Text(fmt.Sprintf(format, v...), 0)
	l.s.Desugar().WithOptions(zap.AddCallerSkip(1)).Error(msg)
	panic(msg)
}

func (l raftLogger) print(level zapcore.Level, v []any) {
	lg := l.s.Desugar()
	if !lg.Core().Enabled(level) {
		return
	}
	lg.WithOptions(zap.AddCallerSkip(2)).Log(level, fmt.Sprint(v...))
}

func (l raftLogger) printf(level zapcore.Level, format string, v []any) {
	if d, ok := raftDemoted[format]; ok && d < level {
		level = d
	}
	lg := l.s.Desugar()
	if !lg.Core().Enabled(level) {
		return
	}
	format, v = raftDecimal(format, v)
	lg.WithOptions(zap.AddCallerSkip(2)).Log(level, fmt.Sprintf(format, v...))
}

// raftDecimal rewrites one of raft's log calls so that member ids come out
// in decimal. raft formats ids, and only ids, with %x on uint64 arguments
// (it formats nothing else with %x): those verbs become %d. Configurations
// (tracker.Config, quorum.JointConfig, quorum.MajorityConfig), whose String
// prints ids in hex, are replaced by a decimal rendering, and the peer list
// of raft's "newRaft" line, which raft formats in hex beforehand, is
// rewritten. Anything the scan does not understand (explicit argument
// indexes) is left as it is.
func raftDecimal(format string, v []any) (string, []any) {
	var b strings.Builder
	arg := 0
	copied := false
	cp := func() {
		if !copied {
			v = append([]any(nil), v...)
			copied = true
		}
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		b.WriteByte(c)
		if c != '%' {
			continue
		}
		// Flags, width, precision, then the verb.
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.*", format[j]) >= 0 {
			if format[j] == '*' {
				arg++ // a width or precision taken from the arguments
			}
			j++
		}
		if j >= len(format) {
			b.WriteString(format[i+1:])
			break
		}
		if format[j] == '[' {
			return format, v // explicit argument indexes: raft uses none
		}
		verb := format[j]
		flags := format[i+1 : j]
		i = j
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if arg < len(v) {
			switch a := v[arg].(type) {
			case uint64:
				if verb == 'x' {
					verb = 'd'
				}
			case tracker.Config:
				cp()
				v[arg] = decimalConfig(a)
			case *tracker.Config:
				if a != nil {
					cp()
					v[arg] = decimalConfig(*a)
				}
			case quorum.JointConfig:
				cp()
				v[arg] = decimalJoint(a)
			case quorum.MajorityConfig:
				cp()
				v[arg] = decimalMajority(a)
			case string:
				if verb == 's' && arg == 1 && strings.HasPrefix(format, "newRaft %x [peers: [%s]") {
					cp()
					v[arg] = decimalIDList(a)
				}
			}
		}
		arg++
		b.WriteString(flags)
		b.WriteByte(verb)
	}
	return b.String(), v
}

// decimalConfig is tracker.Config.String with ids in decimal.
func decimalConfig(c tracker.Config) string {
	var b strings.Builder
	b.WriteString("voters=")
	b.WriteString(decimalJoint(c.Voters))
	if c.Learners != nil {
		b.WriteString(" learners=")
		b.WriteString(decimalMajority(c.Learners))
	}
	if c.LearnersNext != nil {
		b.WriteString(" learners_next=")
		b.WriteString(decimalMajority(c.LearnersNext))
	}
	if c.AutoLeave {
		b.WriteString(" autoleave")
	}
	return b.String()
}

// decimalJoint is quorum.JointConfig.String with ids in decimal.
func decimalJoint(c quorum.JointConfig) string {
	if len(c[1]) > 0 {
		return decimalMajority(c[0]) + "&&" + decimalMajority(c[1])
	}
	return decimalMajority(c[0])
}

// decimalMajority is quorum.MajorityConfig.String with ids in decimal.
func decimalMajority(c map[uint64]struct{}) string {
	ids := quorum.MajorityConfig(c).Slice() // sorted
	var b strings.Builder
	b.WriteByte('(')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(id, 10))
	}
	b.WriteByte(')')
	return b.String()
}

// decimalIDList rewrites a comma-separated list of hex ids in decimal;
// anything else is returned as it is.
func decimalIDList(s string) string {
	if s == "" {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		id, err := strconv.ParseUint(p, 16, 64)
		if err != nil {
			return s
		}
		parts[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(parts, ",")
}

// protoactorLogger is the logger of a member's actor system: protoactor's
// lines in the member's zap log (named "protoactor"), rewritten so that no
// message an actor sends reaches the log. protoactor logs whole messages in
// places (dead letters, at info; supervision failures): raft entries with
// user values among them. Here a message is logged as its type only, a
// failure's reason cut short, and the routine lines (dead letters, actor
// restarts the member's own supervision reports) go to debug.
func protoactorLogger(lg *zap.Logger) *slog.Logger {
	name := lg.Named("protoactor").Name()
	return slog.New(protoactorHandler{next: zapslog.NewHandler(lg.Core(),
		zapslog.WithName(name),
		// The member's log has no stack traces (cmd/node).
		zapslog.AddStacktraceAt(slog.LevelError+1000))})
}

// newActorSystem is the actor system of a member, logging to lg.
func newActorSystem(lg *zap.Logger) *actor.ActorSystem {
	return actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoactorLogger(lg) }),
		// Dead letters go to debug: several a second are plenty.
		actor.WithDeadLetterThrottleCount(10),
	))
}

// protoactor's log messages that protoactorHandler rewrites
// (github.com/asynkron/protoactor-go/actor).
const (
	paDeadLetter    = "[DeadLetter]"         // deadletter.go
	paRecovering    = "[ACTOR] Recovering"   // actor_context.go, EscalateFailure
	paSystemStarted = "actor system started" // actor_system.go
)

// protoactorHandler rewrites protoactor's records before the next handler:
// see protoactorLogger.
type protoactorHandler struct{ next slog.Handler }

func (h protoactorHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h protoactorHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	safe := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		safe[i] = safeAttr(a)
	}
	return protoactorHandler{next: h.next.WithAttrs(safe)}
}

func (h protoactorHandler) WithGroup(name string) slog.Handler {
	return protoactorHandler{next: h.next.WithGroup(name)}
}

func (h protoactorHandler) Handle(ctx context.Context, r slog.Record) error {
	level, msg := r.Level, r.Message
	switch r.Message {
	case paDeadLetter:
		level, msg = slog.LevelDebug, "dropped a message to a stopped or unknown actor"
	case paRecovering:
		// The member's supervision stops the member and logs why.
		level, msg = slog.LevelDebug, "actor failed"
	case paSystemStarted:
		level = slog.LevelDebug
	}
	if level != r.Level && !h.next.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if r.Message == paDeadLetter {
			a = deadLetterAttr(a)
		}
		out.AddAttrs(safeAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// deadLetterAttr names a dead letter's attributes for the reader.
func deadLetterAttr(a slog.Attr) slog.Attr {
	switch a.Key {
	case "pid":
		a.Key = "to"
	case "sender":
		a.Key = "from"
	case "throttled":
		a.Key = "not_logged" // dead letters beyond the throttle, in the last interval
	}
	return a
}

// safeAttr keeps what an actor sent out of an attribute: a message is
// logged as its type, a reason or error as its text cut short, a PID as its
// id.
func safeAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch a.Key {
	case "message":
		return slog.String("message_type", typeName(v.Any()))
	case "reason", "exception", "error":
		if v.Kind() == slog.KindAny {
			return slog.String(a.Key, redact.Text(fmt.Sprint(v.Any()), 0))
		}
		if v.Kind() == slog.KindString {
			return slog.String(a.Key, redact.Text(v.String(), 0))
		}
	}
	if pid, ok := v.Any().(*actor.PID); ok && v.Kind() == slog.KindAny {
		if pid == nil {
			return slog.Attr{} // no sender: nothing to log
		}
		return slog.String(a.Key, pid.GetId())
	}
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		safe := make([]any, len(attrs))
		for i, g := range attrs {
			safe[i] = safeAttr(g)
		}
		return slog.Group(a.Key, safe...)
	}
	return a
}

// typeName is a message's Go type, without the pointer star: what a log
// line may say of a message.
func typeName(m any) string {
	if m == nil {
		return "nil"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "*")
}

// askError is the error of a request to one of the member's actors that got
// no answer, in words an operator reads ("the raft actor did not answer
// within 3s"), not protoactor's ("future: timeout"). It wraps protoactor's
// error for errors.Is.
type askError struct {
	what  string // what was asked: "transfer leadership"; "stop" for StopFuture
	actor string // whom: "raft"
	wait  time.Duration
	err   error
}

func (e *askError) Error() string {
	switch {
	case e.what == "stop" && errors.Is(e.err, actor.ErrTimeout):
		return fmt.Sprintf("the %s actor did not stop within %v", e.actor, e.wait)
	case errors.Is(e.err, actor.ErrTimeout):
		return fmt.Sprintf("%s: the %s actor did not answer within %v", e.what, e.actor, e.wait)
	case errors.Is(e.err, actor.ErrDeadLetter):
		return fmt.Sprintf("%s: the %s actor has stopped", e.what, e.actor)
	}
	return fmt.Sprintf("%s: asking the %s actor: %v", e.what, e.actor, e.err)
}

func (e *askError) Unwrap() error { return e.err }

// confStateField logs a configuration as lists of member ids ("voters":
// [1,2,3]), leaving out the empty ones: protobuf's text form, which
// ConfState's String gives, varies its spacing from build to build.
func confStateField(cs *raftpb.ConfState) zap.Field {
	return zap.Inline(confStateLog{cs})
}

type confStateLog struct{ cs *raftpb.ConfState }

func (c confStateLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, l := range []struct {
		key string
		ids []uint64
	}{
		{"voters", c.cs.GetVoters()},
		{"learners", c.cs.GetLearners()},
		{"voters_outgoing", c.cs.GetVotersOutgoing()},
		{"learners_next", c.cs.GetLearnersNext()},
	} {
		if len(l.ids) > 0 || l.key == "voters" {
			if err := enc.AddArray(l.key, zapcore.ArrayMarshalerFunc(func(ae zapcore.ArrayEncoder) error {
				for _, id := range l.ids {
					ae.AppendUint64(id)
				}
				return nil
			})); err != nil {
				return err
			}
		}
	}
	if c.cs.GetAutoLeave() {
		enc.AddBool("auto_leave", true)
	}
	return nil
}
