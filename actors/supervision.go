package actors

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
)

// What a panic in each of the member's actors costs (the README's
// "Supervision" table says the same for operators):
//
//	actor        on a panic                      rebuilt from
//	wal          the member stops (exit 1)       -: an fsync that failed cannot be retried safely
//	raft         rebuilt (raft_rebuild.go)       the durable hard state and log, at the kv
//	                                             actor's applied index and configuration;
//	                                             its reads and held proposals answered 503;
//	                                             a leader campaigns at once
//	kv           rebuilt (kv/rebuild.go)         the db at its last commit, then the log's
//	                                             entries after it; waiting writes answered 504
//	                                             (unknown), reads 503; watches ended with the
//	                                             revision to resume from
//	watch        rebuilt (watch/hub_rebuild.go)  the revision, commit and tail it knew; every
//	                                             watch ended with the revision to resume from
//	snapshotter  restarted                       its config: a snapshot in progress is abandoned,
//	                                             and the next one falls due as usual
//	peers        restarted (package transport)   fresh connections; queued messages are
//	                                             dropped and reported unreachable
//
// An actor that restarts more than restartLimit times within restartWindow
// stops the member: a bug that fires that often is not one to serve on.
// Every restart is one warn line and raftkv_actor_restarts_total{actor}.
const (
	restartLimit  = 3
	restartWindow = 30 * time.Second
)

// restartable are the actors a panic restarts rather than stopping the
// member, each with how it is rebuilt, for the log line.
var restartable = map[string]string{
	"snapshotter": "from its config; a snapshot in progress is abandoned, the next falls due as usual",
	"kv":          "from the db at its last commit and the log after it; waiting writes answered 504, reads 503, watches ended with the revision to resume from",
	"raft":        "from the durable hard state and log, at the kv actor's applied index; reads and proposals it held answered 503; a leader campaigns at once",
	"watch":       "at the revision it knew; every watch ended with the revision to resume from",
}

// budget counts one actor's recent restarts. The guardian that calls the
// decider may run on any goroutine, hence the mutex.
type budget struct {
	mu    sync.Mutex
	times []time.Time
}

// allow records a restart at now and reports whether it is within the
// budget.
func (b *budget) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.times[:0]
	for _, t := range b.times {
		if now.Sub(t) < restartWindow {
			kept = append(kept, t)
		}
	}
	b.times = append(kept, now)
	return len(b.times) <= restartLimit
}

// errRestartBudget is the reason a member stops when one of its actors
// panicked more often than its restart budget allows.
var errRestartBudget = errors.New("restarted too often")

// supervisor decides what a panic in one of the member's actors costs.
type supervisor struct {
	lg       *zap.Logger
	restarts *prometheus.CounterVec // by actor
	fatal    func(messages.Fatal)   // stops the member
}

// strategy is the supervision of the actor name: its policy above. Past
// the budget, or for an actor that is never restarted, the member stops
// with the panic as the reason; a panic's value may be anything, a message
// an actor holds among it, so only its first bytes are told.
func (s supervisor) strategy(name string) actor.SupervisorStrategy {
	b := &budget{}
	// protoactor's own count is set above ours, so that the decision is
	// always the decider's.
	return actor.NewOneForOneStrategy(restartLimit+1, restartWindow, func(reason any) actor.Directive {
		why := redact.Text(fmt.Sprint(reason), 0)
		how, ok := restartable[name]
		if !ok {
			s.fatal(messages.Fatal{Component: name, Err: errors.New("panic: " + why)})
			return actor.StopDirective
		}
		if !b.allow(time.Now()) {
			s.fatal(messages.Fatal{Component: name, Err: fmt.Errorf("%w: more than %d panics in %v, the last: %s", errRestartBudget, restartLimit, restartWindow, why)})
			return actor.StopDirective
		}
		s.restarts.WithLabelValues(name).Inc()
		s.lg.Warn("an actor panicked; restarted it", zap.String("actor", name), zap.String("panic", why), zap.String("rebuilt", how))
		return actor.RestartDirective
	})
}
