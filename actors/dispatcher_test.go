package actors

import (
	"log/slog"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// ping is one message of the ping-pong below: the receiver answers it
// until n reaches zero, then reports on done.
type ping struct {
	n    int
	done chan struct{}
}

// pingPong answers each ping with a ping to its sender, one fewer.
type pingPong struct{}

func (pingPong) Receive(ctx actor.Context) {
	p, ok := ctx.Message().(ping)
	if !ok {
		return
	}
	if p.n == 0 {
		close(p.done)
		return
	}
	ctx.Request(ctx.Sender(), ping{n: p.n - 1, done: p.done})
}

// BenchmarkMailboxHop is what one message from one actor to another costs
// in wall time when each has to be woken for it, as most hops of a lone
// write are: the pinned dispatcher (dispatcher.go) against protoactor's
// default of a goroutine per mailbox run. ns/op is per hop.
//
//	go test -run '^$' -bench MailboxHop ./actors
func BenchmarkMailboxHop(b *testing.B) {
	for _, pin := range []bool{true, false} {
		name := "pinned"
		if !pin {
			name = "goroutine-per-run"
		}
		b.Run(name, func(b *testing.B) {
			system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
				return slog.New(slog.DiscardHandler)
			}))
			defer system.Shutdown()
			var pinned []*pinned
			spawn := func() *actor.PID {
				var opts []actor.PropsOption
				if pin {
					d := newPinned()
					pinned = append(pinned, d)
					opts = append(opts, actor.WithDispatcher(d))
				}
				return system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return pingPong{} }, opts...))
			}
			a, z := spawn(), spawn()
			b.ResetTimer()
			done := make(chan struct{})
			system.Root.RequestWithCustomSender(a, ping{n: b.N, done: done}, z)
			<-done
			b.StopTimer()
			for _, pid := range []*actor.PID{a, z} {
				_ = system.Root.StopFuture(pid).Wait()
			}
			for _, d := range pinned {
				d.close()
			}
		})
	}
}
