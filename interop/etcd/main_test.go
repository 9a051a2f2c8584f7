// Package etcd_test runs etcd's own Go client, go.etcd.io/etcd/client/v3
// and its concurrency package, unchanged, against a three-member cluster
// of cmd/node processes (internal/nodecluster, which builds cmd/node from
// the root module): the key-value, lease, cluster and maintenance calls,
// watches that resume across a member's restart, and mutexes and
// elections while members and holders are killed -9.
//
// It is a module of its own so that the root module does not depend on
// clientv3; the root's internal packages are importable from here, its
// import path being under the root's.
package etcd_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/nodecluster"
	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// helperEnv, set, makes the test binary a helper process instead of a
// test run: a lock holder or an election candidate that a test kills -9.
// Its value is "lock|campaign <name> <endpoints,...>".
const helperEnv = "INTEROP_ETCD_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helper(spec))
	}
	testutil.Main(m, nodeproc.Cleanup, nodecluster.CloseIdleConnections)
}

// helperTTL is the session TTL of a helper: the node's minimum lease.
const helperTTL = 2

// helper takes the lock or wins the election named in spec with a session
// of helperTTL, prints "held <key> <revision>", and then keeps the session
// alive until it is killed.
func helper(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "bad %s %q\n", helperEnv, spec)
		return 2
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(f[2], ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(helperTTL))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var key string
	var rev int64
	switch f[0] {
	case "lock":
		mu := concurrency.NewMutex(s, f[1])
		if err := mu.Lock(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		key, rev = mu.Key(), mu.Header().Revision
	case "campaign":
		e := concurrency.NewElection(s, f[1])
		if err := e.Campaign(ctx, "helper"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		key, rev = e.Key(), e.Rev()
	default:
		fmt.Fprintf(os.Stderr, "bad %s %q\n", helperEnv, spec)
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "held %s %d\n", key, rev)
	_ = w.Flush()
	<-s.Done() // until killed, or the session is lost
	fmt.Fprintln(os.Stderr, "session lost")
	return 1
}

// startHelper runs the test binary as a helper (see helper) against
// endpoints; it is killed and reaped when the test ends.
func startHelper(t *testing.T, what, name string, endpoints []string) *nodeproc.Proc {
	t.Helper()
	return nodeproc.StartT(t, nodeproc.Cmd{
		Name:   what + " helper",
		Bin:    os.Args[0],
		Args:   []string{"-test.run=^$"},
		Env:    []string{fmt.Sprintf("%s=%s %s %s", helperEnv, what, name, strings.Join(endpoints, ","))},
		Stderr: &testutil.Buffer{},
	})
}

// waitHeld waits until the helper says it holds; it returns its key and
// revision.
func waitHeld(t *testing.T, p *nodeproc.Proc) (string, int64) {
	t.Helper()
	var key string
	var rev int64
	testutil.Eventually(t, 30*time.Second, p.Name()+" holding", func() error {
		if !p.Running() {
			t.Fatalf("%s exited: %s", p.Name(), p.Stderr())
		}
		if _, err := fmt.Sscanf(p.Output(), "held %s %d\n", &key, &rev); err != nil {
			return fmt.Errorf("output %q: %v", p.Output(), err)
		}
		return nil
	})
	return key, rev
}

// newClient is a clientv3 client of endpoints, closed when the test ends.
func newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// opTimeout bounds one client call that is meant to answer.
const opTimeout = 15 * time.Second

// ctx is a context bounded by opTimeout, cancelled when the test ends.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return c
}
