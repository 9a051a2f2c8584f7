package actors

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	itest "github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

// panicking panics on every string it gets, with the string.
type panicking struct{}

func (panicking) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		panic(s)
	}
}

// A restartable actor is made anew at each panic, up to the budget; the
// next panic within the window stops the member, naming the actor. Any
// other actor stops the member at its first panic. No panic value reaches
// the reason whole.
func TestSupervisionPolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		panics   int
		restarts int  // instances made after the first
		stops    bool // the member is told to stop
	}{
		{"snapshotter", restartLimit, restartLimit, false},
		{"snapshotter", restartLimit + 1, restartLimit, true},
		{"kv", restartLimit + 1, restartLimit, true},
		{"raft", restartLimit + 1, restartLimit, true},
		{"watch", restartLimit + 1, restartLimit, true},
		{"wal", 1, 0, true},
	} {
		t.Run(fmt.Sprintf("%s panics %d times", tc.name, tc.panics), func(t *testing.T) {
			system := newActorSystem(zap.NewNop())
			defer system.Shutdown()
			var mu sync.Mutex
			var fatals []messages.Fatal
			restarts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "restarts"}, []string{"actor"})
			sup := supervisor{lg: zap.NewNop(), restarts: restarts, fatal: func(f messages.Fatal) {
				mu.Lock()
				defer mu.Unlock()
				fatals = append(fatals, f)
			}}
			var made atomic.Int32
			props := actor.PropsFromProducer(func() actor.Actor { made.Add(1); return panicking{} }, actor.WithGuardian(sup.strategy(tc.name)))
			pid, err := system.Root.SpawnNamed(props, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			long := strings.Repeat("x", 4*redact.MaxErrorBytes)
			for i := range tc.panics {
				system.Root.Send(pid, fmt.Sprintf("panic %d %s", i, long))
				restarted := i < tc.restarts
				itest.Eventually(t, 5*time.Second, "the supervisor to decide", func() error {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case restarted && made.Load() == int32(i+2), !restarted && len(fatals) > 0:
						return nil
					}
					return fmt.Errorf("%d instances made, %d fatal errors", made.Load(), len(fatals))
				})
			}
			mu.Lock()
			defer mu.Unlock()
			if got := int(made.Load()) - 1; got != tc.restarts {
				t.Errorf("%d restarts, want %d", got, tc.restarts)
			}
			if got := int(testutil.ToFloat64(restarts.WithLabelValues(tc.name))); got != tc.restarts {
				t.Errorf("restarts counted %d, want %d", got, tc.restarts)
			}
			if !tc.stops {
				if len(fatals) != 0 {
					t.Fatalf("the member was stopped: %v", fatals)
				}
				return
			}
			if len(fatals) != 1 || fatals[0].Component != tc.name {
				t.Fatalf("fatal errors %v, want one from %s", fatals, tc.name)
			}
			if restartable[tc.name] != "" && !errors.Is(fatals[0].Err, errRestartBudget) {
				t.Errorf("the member stopped for %v, want the restart budget", fatals[0].Err)
			}
			if n := len(fatals[0].Err.Error()); n > 2*redact.MaxErrorBytes {
				t.Errorf("the reason is %d bytes: the panic value was not cut", n)
			}
		})
	}
}

// The budget forgets restarts older than the window.
func TestRestartBudgetWindow(t *testing.T) {
	var b budget
	t0 := time.Unix(1000, 0)
	for i := range restartLimit {
		if !b.allow(t0.Add(time.Duration(i) * time.Second)) {
			t.Fatalf("restart %d refused", i+1)
		}
	}
	if b.allow(t0.Add(restartWindow - time.Second)) {
		t.Fatal("a restart past the limit within the window was allowed")
	}
	if !b.allow(t0.Add(3 * restartWindow)) {
		t.Fatal("a restart long after the others was refused")
	}
}
