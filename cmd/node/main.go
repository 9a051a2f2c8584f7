// Command node runs one member of a replicated key-value cluster.
//
// With no flags it starts a one-member cluster: peer URL
// http://127.0.0.1:12379, client API on 127.0.0.1:12380, data in ./node-1.
// Flags --id, --cluster, --port and --join mean what they mean for etcd's
// raftexample: member ids are 1..N in --cluster order, and the member
// serves the peer protocol (etcd rafthttp's) on its own --cluster URL.
// With --format raftexample it can join a cluster of raftexample nodes.
//
// Exit status: 0 after SIGINT/SIGTERM or removal from the cluster; 1 when the
// member could not start or stopped on a fatal error (such as a failed WAL
// write); 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/transport"
)

type options struct {
	id              uint64
	cluster         string
	port            int
	join            bool
	dataDir         string
	format          kv.Format
	clusterID       uint64
	listenPeer      string
	snapshotCount   uint64
	catchUpEntries  uint64
	maxRequestBytes int64
	logLevel        string
	pprof           bool
}

// Default cluster ids. raftexample's is fixed at 0x1000; ours differs so
// that members of the two formats refuse each other's messages (412)
// instead of applying entries they cannot read.
const (
	raftexampleClusterID = 0x1000
	nativeClusterID      = 0x6e6f6465 // "node"
)

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.Uint64Var(&o.id, "id", 1, "this member's id: its 1-based position in --cluster")
	fs.StringVar(&o.cluster, "cluster", "http://127.0.0.1:12379", "comma-separated peer URLs of the cluster's members, in id order")
	fs.IntVar(&o.port, "port", 12380, "client API port (on 127.0.0.1)")
	fs.BoolVar(&o.join, "join", false, "join a running cluster that this member was added to (POST /<id>)")
	fs.StringVar(&o.dataDir, "data-dir", "", "data directory (default ./node-<id>)")
	format := fs.String("format", "native", "state machine format: native, or raftexample to join a cluster of etcd raftexample nodes")
	clusterID := fs.String("cluster-id", "", "cluster id in hex (default 1000 for --format raftexample, 6e6f6465 for native)")
	fs.StringVar(&o.listenPeer, "listen-peer", "", "host:port the peer server listens on (default: the host:port of this member's --cluster URL)")
	fs.Uint64Var(&o.snapshotCount, "snapshot-count", actors.DefaultSnapshotCount, "applied entries between snapshots")
	fs.Uint64Var(&o.catchUpEntries, "catch-up-entries", actors.DefaultCatchUpEntries, "entries kept in the log behind a snapshot, for followers that lag")
	fs.Int64Var(&o.maxRequestBytes, "max-request-bytes", 1572864, "largest client request body accepted, in bytes")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&o.pprof, "enable-pprof", false, "serve Go's profiler at /debug/pprof/ on the client port")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.dataDir == "" {
		o.dataDir = "node-" + strconv.FormatUint(o.id, 10)
	}
	var err error
	if o.format, err = kv.ParseFormat(*format); err != nil {
		return o, fmt.Errorf("--format: %w", err)
	}
	switch {
	case *clusterID != "":
		if o.clusterID, err = strconv.ParseUint(*clusterID, 16, 64); err != nil || o.clusterID == 0 {
			return o, fmt.Errorf("--cluster-id %q: want a non-zero hex number", *clusterID)
		}
	case o.format == kv.FormatRaftexample:
		o.clusterID = raftexampleClusterID
	default:
		o.clusterID = nativeClusterID
	}
	if o.snapshotCount == 0 {
		return o, errors.New("--snapshot-count must be positive")
	}
	return o, nil
}

// peers maps ids 1..N to the --cluster URLs, as raftexample numbers them.
func peers(cluster string) (map[uint64]string, error) {
	out := make(map[uint64]string)
	for i, s := range strings.Split(cluster, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bad peer URL %q in --cluster", s)
		}
		out[uint64(i+1)] = u.String()
	}
	return out, nil
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	lg, err := newLogger(o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := run(o, lg)
	_ = lg.Sync()
	os.Exit(code)
}

func run(o options, lg *zap.Logger) int {
	ps, err := peers(o.cluster)
	if err != nil {
		lg.Error("bad flags", zap.Error(err))
		return 2
	}
	if _, ok := ps[o.id]; !ok {
		lg.Error("bad flags", zap.Error(fmt.Errorf("--id %d is not in --cluster (%d members)", o.id, len(ps))))
		return 2
	}
	peerAddr := o.listenPeer
	if peerAddr == "" {
		u, _ := url.Parse(ps[o.id]) // checked by peers
		peerAddr = u.Host
	}
	// Listen before starting the member: a taken port is a start failure,
	// not a member that runs deaf.
	peerLn, err := net.Listen("tcp", peerAddr)
	if err != nil {
		lg.Error("could not listen for peers", zap.String("addr", peerAddr), zap.Error(err))
		return 1
	}
	defer peerLn.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var tr *transport.HTTP
	node, err := actors.StartNode(actors.NodeConfig{
		ID:             o.id,
		ClusterID:      o.clusterID,
		Peers:          ps,
		Join:           o.join,
		DataDir:        o.dataDir,
		Format:         o.format,
		SnapshotCount:  o.snapshotCount,
		CatchUpEntries: o.catchUpEntries,
		Transport: func(system *actor.ActorSystem, inbox transport.Inbox) (transport.Transport, error) {
			var err error
			tr, err = transport.NewHTTP(transport.HTTPConfig{
				ID:        o.id,
				ClusterID: o.clusterID,
				URL:       ps[o.id],
				System:    system,
				Inbox:     inbox,
				Logger:    lg.Named("transport"),
			})
			return tr, err
		},
		Logger:  lg,
		Metrics: metrics.New(reg),
	})
	if err != nil {
		lg.Error("could not start the member", zap.Error(err))
		return 1
	}
	if err := metrics.RegisterNetwork(reg, tr.Stats); err != nil {
		lg.Error("could not register the network metrics", zap.Error(err))
		_ = node.Stop()
		return 1
	}
	// No WriteTimeout: streams to peers live as long as their connection,
	// and the transport puts a deadline on each write itself.
	peerSrv := &http.Server{Handler: tr.Handler(), ReadHeaderTimeout: 5 * time.Second}
	peerErr := make(chan error, 1)
	go func() { peerErr <- peerSrv.Serve(peerLn) }()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		lg.Error("could not listen for clients", zap.String("addr", addr), zap.Error(err))
		_ = node.Stop()
		return 1
	}
	api := http.NewServeMux()
	api.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if o.pprof {
		api.HandleFunc("/debug/pprof/", pprof.Index)
		api.HandleFunc("/debug/pprof/profile", pprof.Profile)
		api.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		api.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	api.Handle("/", kv.NewHandler(kv.HandlerConfig{
		Root:            node.Root(),
		KV:              node.KV(),
		Raft:            node.Raft(),
		MaxRequestBytes: o.maxRequestBytes,
		Format:          o.format,
		Logger:          lg.Named("http"),
	}))
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	lg.Info("serving",
		zap.Uint64("id", o.id),
		zap.String("client_url", "http://"+addr),
		zap.String("peer_url", ps[o.id]),
		zap.String("peer_listen", peerAddr),
		zap.Stringer("format", o.format),
		zap.String("cluster_id", strconv.FormatUint(o.clusterID, 16)),
		zap.String("data_dir", o.dataDir))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	code := 0
	select {
	case s := <-sig:
		lg.Info("stopping on signal", zap.Stringer("signal", s))
	case <-node.Done():
		if errors.Is(node.Err(), messages.ErrRemoved) {
			lg.Info("this member was removed from the cluster; stopping", zap.Error(node.Err()))
		} else {
			lg.Error("stopping on a fatal error", zap.Error(node.Err()))
			code = 1
		}
	case err := <-serveErr:
		lg.Error("client API stopped", zap.Error(err))
		code = 1
	case err := <-peerErr:
		lg.Error("peer server stopped", zap.Error(err))
		code = 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		lg.Warn("client API shutdown", zap.Error(err))
	}
	// Close, not Shutdown: a peer's stream is an endless response, and
	// the member stops talking to peers from here on anyway.
	if err := peerSrv.Close(); err != nil {
		lg.Warn("peer server close", zap.Error(err))
	}
	if err := node.Stop(); err != nil {
		lg.Error("stop", zap.Error(err))
		code = 1
	}
	return code
}
