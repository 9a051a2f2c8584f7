package actors

import (
	"fmt"

	"go.uber.org/zap"
)

// raftLogger adapts zap to raft.Logger. raft calls Panic and Fatal on broken
// invariants and expects them not to return: both panic, and the actor
// supervision turns that panic into a stop of the member with the message.
type raftLogger struct{ s *zap.SugaredLogger }

func (l raftLogger) Debug(v ...any)                 { l.s.Debug(v...) }
func (l raftLogger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }
func (l raftLogger) Info(v ...any)                  { l.s.Info(v...) }
func (l raftLogger) Infof(format string, v ...any)  { l.s.Infof(format, v...) }
func (l raftLogger) Warning(v ...any)               { l.s.Warn(v...) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.s.Warnf(format, v...)
}
func (l raftLogger) Error(v ...any)                 { l.s.Error(v...) }
func (l raftLogger) Errorf(format string, v ...any) { l.s.Errorf(format, v...) }
func (l raftLogger) Fatal(v ...any)                 { l.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...any) { l.Panicf(format, v...) }
func (l raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	l.s.Error(msg)
	panic(msg)
}
func (l raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.s.Error(msg)
	panic(msg)
}
