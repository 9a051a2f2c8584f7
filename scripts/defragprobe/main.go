// Command defragprobe is the client of scripts/defrag-bench.sh. It speaks
// etcd's v3 gRPC API, which this node and etcd both serve on their client
// port, so that one client loads, thins and probes both the same way:
//
//	defragprobe load   --endpoint H:P --keys N      # keys k/00000000.. with 100-byte values
//	defragprobe delete --endpoint H:P --keys N      # all but every tenth of them
//	defragprobe probe  --endpoint H:P --out FILE    # until SIGTERM: every request's latency
//	defragprobe report --log FILE --from NS --to NS # the probe's figures in and out of a window
//
// load and delete batch their operations into transactions, several in
// flight, so that two million keys go in within minutes. probe runs
// --clients clients, each a put of its own key then a linearizable get of
// it, one request at a time, and writes one line per request: its start
// (Unix ns), put or get, its latency (ns) and "-" or the error's gRPC
// code. report prints, as one JSON object, the count, p50, p99 and maximum
// latency of the requests that overlapped the window (a defragmentation)
// and of those wholly outside it.
//
// Exit status: 0 when done, 1 when the member failed a request of load or
// delete or a file could not be read or written, 2 for a bad command line.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// errUsage is a bad command line: exit 2.
var errUsage = errors.New("bad usage")

func main() {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "defragprobe:", err)
		}
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "defragprobe:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: a command: load, delete, probe or report", errUsage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard) // one line on stderr, from main
	endpoint := fs.String("endpoint", "127.0.0.1:2379", "the member's client address, host:port (plain gRPC)")
	keys := fs.Int("keys", 100_000, "load, delete: the keys k/00000000 up to k/<keys-1>")
	valSize := fs.Int("val-size", 100, "load: bytes of each value")
	keepEvery := fs.Int("keep-every", 10, "delete: keep one key of each run of this many")
	// 128 operations: etcd's default --max-txn-ops, and this node's bound.
	ops := fs.Int("ops", 128, "load, delete: operations per transaction")
	// 32 transactions in flight fill the member's batches without making
	// either system refuse requests for a long apply queue.
	clients := fs.Int("clients", 0, "transactions (load, delete; default 32) or probe clients (default 4) in flight")
	outFile := fs.String("out", "", "probe: the file to write a line per request to")
	// A defragmentation of etcd blocks requests for all of its copy: long
	// enough to wait through, not forever.
	timeout := fs.Duration("timeout", 5*time.Minute, "probe, load, delete: the longest a request may take")
	logFile := fs.String("log", "", "report: the probe's file")
	from := fs.Int64("from", 0, "report: the window's start, Unix ns")
	to := fs.Int64("to", 0, "report: the window's end, Unix ns")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	switch {
	case *keys < 1 || *keys > 99_999_999:
		return fmt.Errorf("%w: --keys must be 1 to 99999999 (keys have 8 digits)", errUsage)
	case *valSize < 0, *ops < 1, *clients < 0, *keepEvery < 1, *timeout <= 0:
		return fmt.Errorf("%w: --val-size, --ops, --clients, --keep-every and --timeout must be positive", errUsage)
	}
	switch args[0] {
	case "report":
		if *logFile == "" || *from <= 0 || *to < *from {
			return fmt.Errorf("%w: report needs --log and --from <= --to", errUsage)
		}
		return report(*logFile, *from, *to, out)
	case "load", "delete", "probe":
	default:
		return fmt.Errorf("%w: unknown command %q: load, delete, probe or report", errUsage, args[0])
	}
	if args[0] == "probe" && *outFile == "" {
		return fmt.Errorf("%w: probe needs --out", errUsage)
	}
	conn, err := grpc.NewClient("passthrough:///"+*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *endpoint, err)
	}
	defer conn.Close()
	kv := pb.NewKVClient(conn)
	switch args[0] {
	case "load":
		val := []byte(strings.Repeat("v", *valSize))
		return batches(kv, "puts", *keys, *ops, orDefault(*clients, 32), *timeout, func(i int) *pb.RequestOp {
			return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: key(i), Value: val}}}
		}, out)
	case "delete":
		// One range deletion per run of keep-every keys: all of it but its
		// first key, so that the survivors are spread over the whole key
		// space (and over the db's pages) rather than packed at one end.
		runs := (*keys + *keepEvery - 1) / *keepEvery
		return batches(kv, "range deletions", runs, *ops, orDefault(*clients, 32), *timeout, func(r int) *pb.RequestOp {
			first, end := r**keepEvery+1, min((r+1)**keepEvery, *keys)
			if first >= end {
				return nil
			}
			return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{
				RequestDeleteRange: &pb.DeleteRangeRequest{Key: key(first), RangeEnd: key(end)}}}
		}, out)
	default:
		return probe(kv, *outFile, orDefault(*clients, 4), *timeout)
	}
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func key(i int) []byte { return fmt.Appendf(nil, "k/%08d", i) }

// batches sends the operations op(0) .. op(n-1) (nil ones left out) in
// transactions of ops operations, clients of them in flight, and reports
// the rate on out.
func batches(kv pb.KVClient, what string, n, ops, clients int, timeout time.Duration, op func(int) *pb.RequestOp, out io.Writer) error {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range clients {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(ops))) - ops
				if lo >= n {
					return
				}
				txn := &pb.TxnRequest{}
				for i := lo; i < min(lo+ops, n); i++ {
					if o := op(i); o != nil {
						txn.Success = append(txn.Success, o)
					}
				}
				if len(txn.Success) == 0 {
					continue
				}
				err := retry(func() error {
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					defer cancel()
					_, err := kv.Txn(ctx, txn)
					return err
				})
				if err != nil {
					once.Do(func() { first = fmt.Errorf("transaction of operations %d..%d: %w", lo, lo+ops-1, err) })
					next.Store(int64(n)) // the others stop too
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	secs := time.Since(start).Seconds()
	_, err := fmt.Fprintf(out, "%d %s in %.1f s (%.0f/s)\n", n, what, secs, float64(n)/secs)
	return err
}

// retries bounds the attempts of one transaction of load or delete: a
// member that shares its cores with the loader may time a request out
// (etcd's and this node's "request timed out") or refuse it for a long
// apply queue now and then; puts of the same values and range deletions
// may be sent again.
const retries = 10

func retry(f func() error) error {
	var err error
	for attempt := 1; attempt <= retries; attempt++ {
		if err = f(); err == nil {
			return nil
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		default:
			return err
		}
	}
	return fmt.Errorf("%d attempts: %w", retries, err)
}

// sample is one request of the probe.
type sample struct {
	start int64 // Unix ns
	get   bool
	lat   time.Duration
	code  string // "-", or the error's gRPC code
}

// probe runs clients clients until SIGTERM or SIGINT, and writes a line per
// request to path. A request in flight at the signal is waited for: it may
// be the one that waited longest.
func probe(kv pb.KVClient, path string, clients int, timeout time.Duration) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(f)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	var stop atomic.Bool
	go func() {
		<-sig
		stop.Store(true)
	}()
	samples := make(chan sample, 1024)
	var wg sync.WaitGroup
	val := []byte(strings.Repeat("p", 100))
	for c := range clients {
		wg.Go(func() {
			k := fmt.Appendf(nil, "probe/%d", c)
			for !stop.Load() {
				for _, get := range []bool{false, true} {
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					t0 := time.Now()
					var err error
					if get {
						_, err = kv.Range(ctx, &pb.RangeRequest{Key: k}) // linearizable: etcd's default
					} else {
						_, err = kv.Put(ctx, &pb.PutRequest{Key: k, Value: val})
					}
					lat := time.Since(t0)
					cancel()
					code := "-"
					if err != nil {
						code = status.Code(err).String()
					}
					samples <- sample{start: t0.UnixNano(), get: get, lat: lat, code: code}
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(samples)
	}()
	for s := range samples {
		op := "put"
		if s.get {
			op = "get"
		}
		if _, err := fmt.Fprintf(w, "%d\t%s\t%d\t%s\n", s.start, op, s.lat.Nanoseconds(), s.code); err != nil {
			stop.Store(true)
			for range samples {
			}
			return err
		}
	}
	return w.Flush()
}

// figures are those of a set of the probe's requests, in ms.
type figures struct {
	N      int     `json:"n"`
	Errors int     `json:"errors"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
	// MaxAt is when the slowest request started, in ms from the window's
	// start (negative: before it).
	MaxAt float64 `json:"max_at_ms"`
}

func report(path string, from, to int64, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type req struct {
		lat   time.Duration
		start int64
	}
	var during, outside []req
	var errsDuring, errsOutside int
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 4 {
			return fmt.Errorf("%s:%d: %d fields, not 4", path, line, len(fields))
		}
		start, err1 := strconv.ParseInt(fields[0], 10, 64)
		lat, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		r := req{lat: time.Duration(lat), start: start}
		// A request that overlapped the window in any part counts as
		// during it: it may have waited for it.
		in := start <= to && start+lat >= from
		switch {
		case in && fields[3] != "-":
			errsDuring++
		case fields[3] != "-":
			errsOutside++
		case in:
			during = append(during, r)
		default:
			outside = append(outside, r)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	fig := func(rs []req, errs int) figures {
		fg := figures{N: len(rs), Errors: errs}
		if len(rs) == 0 {
			return fg
		}
		slices.SortFunc(rs, func(a, b req) int { return int(a.lat - b.lat) })
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		at := func(q float64) time.Duration { return rs[int(math.Ceil(q*float64(len(rs))))-1].lat }
		last := rs[len(rs)-1]
		fg.P50, fg.P99, fg.Max, fg.MaxAt = ms(at(0.50)), ms(at(0.99)), ms(last.lat), float64(last.start-from)/1e6
		return fg
	}
	b, err := json.Marshal(map[string]any{
		"window_ms": float64(to-from) / 1e6,
		"during":    fig(during, errsDuring),
		"outside":   fig(outside, errsOutside),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}
