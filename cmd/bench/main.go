// Command bench is a load generator for the node's client HTTP API, in the
// manner of etcd's benchmark tool; it talks to running nodes over HTTP only.
// "bench -h" lists its commands, "bench <command> -h" their flags.
//
// Each of --clients clients keeps one request in flight, to endpoint i mod N
// of --endpoints, or to the one whose node reports itself the leader in GET
// /v1/status (--target leader), for --duration or --total requests.
//
// Counting is strict: an operation counts only when the node answered 2xx
// (for a PUT: committed and applied) with the answer asked for (a read's
// body is the value written, a cas or watch write's answer its revision, a
// transaction succeeded, a range holds min(--range-limit, --keys) keys).
// 503, 504, any other status, a wrong answer, a failed compare or short
// range, and a failed connection are errors of their own kinds, never
// operations, and their latency is not recorded. Under cas --contention,
// 412s are the expected losses of a race: completed operations, apart.
// A watch run times each watcher × acknowledged write from the writer's
// answer to the watcher's event, and counts what was missed, repeated or
// out of order.
//
// put --leases N (not in "put -h", which its golden file pins) grants N
// leases of --lease-ttl (10s) first, a key on each, and keeps them alive
// during the run; --leases-expire lets them all expire in it (lease.go).
//
// The generator is built to cost the node's machine little: a shared
// transport with pooled connections, a value generated once, keys built in
// reused buffers, answers and watch events walked in place (jsonscan.go),
// latencies in fixed per-client histograms, and watchers that reuse their
// buffers from event to event. GOMAXPROCS=1 keeps it to one core.
//
// Exit status: 0 when the run completed, even with errors; 1 when it could
// not run or nothing was acknowledged; 2 for a bad command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var (
	errUsage               = errors.New("bad usage")
	errNoLeader            = errors.New("no endpoint reports itself as the leader")
	errPreload             = errors.New("preloading the key space failed")
	errRevisions           = errors.New("reading the keys' revisions failed")
	errNoWatch             = errors.New("no watch could be opened")
	errNothingAcknowledged = errors.New("no operation was acknowledged")
)

func main() {
	// The first interrupt ends the timed phase early and still prints the
	// report; stop then restores the default, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	var progress io.Writer
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		progress = os.Stderr // a bar redrawn with \r is noise in a file
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	lg := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(os.Stderr), zapcore.InfoLevel))
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, progress, lg)
	stop()
	_ = lg.Sync()
	os.Exit(code)
}

// runMain is the whole command but for the process; it returns the exit
// status.
func runMain(ctx context.Context, args []string, stdout, stderr, progress io.Writer, lg *zap.Logger) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	cfg.runID = strconv.FormatUint(uint64(rand.Uint32()), 36) // in every key of the run
	res, err := runBench(ctx, cfg, lg, progress)
	if err == nil {
		write := writeText
		if cfg.json {
			write = writeJSON
		}
		err = write(stdout, res)
	}
	if err == nil && res.all().ok() == 0 {
		err = errNothingAcknowledged
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}
