package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/etcdapi"
	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/tlsfiles"
	"github.com/raftkv/node/transport"
)

// shutdownTimeout bounds the wait for the client API's requests in flight
// at a stop: a write waits at most the node's 5 s request timeout.
const shutdownTimeout = 5 * time.Second

// refuse prints why the member cannot start: one line on stderr, apart from
// the JSON log, for the operator to read.
func refuse(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "node: "+format+"\n", args...)
	return 1
}

// tlsConfigs are the TLS sides of a member: nil where a listener is plain.
type tlsConfigs struct {
	client     *tls.Config      // served on https:// client URLs
	peerServer *tls.Config      // served on https:// peer URLs
	peerClient *tlsfiles.Client // presented to, and checking, https:// peers
}

func loadTLS(o options, lg *zap.Logger) (tlsConfigs, error) {
	var c tlsConfigs
	var err error
	if anyHTTPS(o.listenClient) {
		if c.client, err = tlsfiles.ServerConfig(o.clientTLS, lg.Named("tls")); err != nil {
			return c, fmt.Errorf("client TLS: %w", err)
		}
	}
	if anyHTTPS(o.listenPeer) {
		if c.peerServer, err = tlsfiles.ServerConfig(o.peerTLS, lg.Named("peer-tls")); err != nil {
			return c, fmt.Errorf("peer TLS: %w", err)
		}
	}
	pt := o.peerTLS
	if c.peerClient, err = tlsfiles.NewClient(pt, lg.Named("peer-tls")); err != nil {
		return c, fmt.Errorf("peer TLS: %w", err)
	}
	return c, nil
}

// listenAll listens on every URL, TLS-wrapped where the URL is https://. A
// taken port is a start failure, not a member that runs deaf.
func listenAll(us []*url.URL, tlsConfig *tls.Config) ([]net.Listener, error) {
	var lns []net.Listener
	for _, u := range us {
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen on %s: %w", u, err)
		}
		if u.Scheme == "https" {
			ln = tlsListener{tls.NewListener(ln, tlsConfig)}
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// serveAll serves srv on every listener; the first to stop reports on errc.
func serveAll(srv *http.Server, lns []net.Listener, errc chan<- error) {
	for _, ln := range lns {
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
}

func run(o options, lg *zap.Logger) int {
	tc, err := loadTLS(o, lg)
	if err != nil {
		return refuse("%v", err)
	}
	// What members ask each other outside raft (GET /members to join, a
	// promotion handed to the leader) goes over the peers' TLS too.
	peerHTTP := &http.Client{Transport: &http.Transport{
		DialTLSContext: tc.peerClient.DialTLSContext(&net.Dialer{Timeout: learnTimeout}),
	}}
	defer peerHTTP.CloseIdleConnections()
	cid, err := clusterID(o, peerHTTP)
	if err != nil {
		return refuse("%v", err)
	}
	peerLns, err := listenAll(o.listenPeer, tc.peerServer)
	if err != nil {
		return refuse("could not listen for peers: %v", err)
	}
	defer closeAll(peerLns)
	clientLns, err := listenAll(o.listenClient, withH2(tc.client))
	if err != nil {
		return refuse("could not listen for clients: %v", err)
	}
	defer closeAll(clientLns)
	metricsLns, err := listenAll(o.listenMetrics, nil) // http:// only (flags.go)
	if err != nil {
		return refuse("could not listen for metrics: %v", err)
	}
	defer closeAll(metricsLns)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var tr *transport.HTTP
	node, err := actors.StartNode(actors.NodeConfig{
		ID:              o.id,
		ClusterID:       cid,
		Token:           o.token,
		Peers:           o.peers,
		Join:            o.join,
		ForceNewCluster: o.force,
		DataDir:         o.dataDir,
		Format:          o.format,
		ClientURLs:      o.advertiseClient,
		SnapshotCount:   o.snapshotCount,
		CatchUpEntries:  o.catchUpEntries,
		Quota:           o.quota,
		Transport: func(env actors.TransportEnv) (transport.Transport, error) {
			var err error
			tr, err = transport.NewHTTP(transport.HTTPConfig{
				ID:        o.id,
				ClusterID: env.ClusterID,
				URL:       o.peers[o.id],
				System:    env.System,
				Inbox:     env.Inbox,
				TLS:       tc.peerClient,

				SnapshotSource: env.SnapshotSource,
				SnapshotSink:   env.SnapshotSink,
				Fatal:          env.Fatal,
				Restarts:       env.Restarts,
				Logger:         lg.Named("transport"),
			})
			return tr, err
		},
		Logger:  lg,
		Metrics: metrics.New(reg),
	})
	if err != nil {
		return refuse("%s", refusal(o, err))
	}
	cid = node.ClusterID()
	if err := metrics.RegisterNetwork(reg, tr.Stats); err != nil {
		lg.Error("could not register the network metrics", zap.Error(err))
		_ = node.Stop()
		return 1
	}

	peerMux := http.NewServeMux()
	for _, p := range []string{"/raft", "/raft/"} {
		peerMux.Handle(p, tr.Handler())
	}
	peerAPI := httpapi.NewPeerHandler(httpapi.PeerHandlerConfig{Root: node.Root(), KV: node.KV(), ClusterID: cid, Format: o.format, Logger: lg.Named("peer-api")})
	for _, p := range httpapi.PeerPatterns() {
		peerMux.Handle(p, peerAPI)
	}
	// The other members ask this one's version there (GET /version).
	peerMux.Handle(httpapi.PeerVersionPath, httpapi.NewPeerVersionHandler(cid))
	// No WriteTimeout: streams to peers live as long as their connection,
	// and the transport puts a deadline on each write itself.
	peerSrv := &http.Server{Handler: peerMux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: serverErrorLog(lg.Named("peer-server"))}
	serveErr := make(chan error, 1)
	serveAll(peerSrv, peerLns, serveErr)

	// The client API is the server's handler itself: an http.ServeMux in
	// front would clean paths and redirect, and /v1/kv//a would write /v1/kv/a.
	// Only /debug/pprof/ paths reach the mux below.
	var debug http.Handler
	if o.pprof {
		dm := http.NewServeMux()
		dm.HandleFunc("/debug/pprof/", pprof.Index)
		dm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		dm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		debug = dm
	}
	api := httpapi.NewHandler(httpapi.HandlerConfig{
		Root:            node.Root(),
		KV:              node.KV(),
		Raft:            node.Raft(),
		MaxRequestBytes: o.maxRequestBytes,
		Format:          o.format,
		PeerClient:      peerHTTP,
		ClusterID:       cid,
		Watch:           node.Watch(),
		History:         node.History(),
		Logger:          lg.Named("http"),
		Metrics:         promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Debug:           debug,
		Backups:         node.State(),
		Quota:           o.quota,
	})
	v3 := etcdapi.New(etcdapi.Config{
		Root:            node.Root(),
		KV:              node.KV(),
		Raft:            node.Raft(),
		Watch:           node.Watch(),
		History:         node.History(),
		ClusterID:       cid,
		MemberID:        o.id,
		Format:          o.format,
		PeerClient:      peerHTTP,
		Snapshot:        node.State(),
		Quota:           o.quota,
		MaxRequestBytes: int(o.maxRequestBytes),
		Logger:          lg.Named("etcdapi"),
	})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: serverErrorLog(lg.Named("client-server"))}
	doors, err := newClientDoors(api, v3.NewGRPCServer(), srv)
	if err != nil {
		lg.Error("could not start etcd's JSON gateway", zap.Error(err))
		_ = node.Stop()
		return 1
	}
	doors.serve(clientLns, serveErr)
	// Plain, whatever the client URLs are: probes and Prometheus need no
	// certificate there, and reach nothing but the metrics and the health
	// checks (httpapi.NewHealthHandler).
	metricsSrv := &http.Server{
		Handler: httpapi.NewHealthHandler(httpapi.HealthConfig{
			Root: node.Root(), KV: node.KV(), Raft: node.Raft(), Logger: lg.Named("http"),
			Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          serverErrorLog(lg.Named("metrics-server")),
	}
	serveAll(metricsSrv, metricsLns, serveErr)
	lg.Info("serving",
		zap.Uint64("id", o.id),
		zap.Strings("client_urls", o.advertiseClient),
		zap.Stringers("listen_client_urls", o.listenClient),
		zap.String("peer_url", o.peers[o.id]),
		zap.Stringers("listen_peer_urls", o.listenPeer),
		zap.Stringers("listen_metrics_urls", o.listenMetrics),
		zap.Stringer("format", o.format),
		zap.String("cluster_id", strconv.FormatUint(cid, 16)),
		zap.String("data_dir", o.dataDir))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	code := 0
	var fatal error
	stoppedItself := false // a fatal error or its removal: nothing left to serve
	select {
	case s := <-sig:
		lg.Info("stopping on signal", zap.Stringer("signal", s))
		handOver(node, lg)
	case <-node.Done():
		stoppedItself = true
		if errors.Is(node.Err(), messages.ErrRemoved) {
			lg.Info("this member was removed from the cluster; stopping", zap.Error(node.Err()))
		} else {
			// The member logged it ("fatal error: stopping the member");
			// the last line, on stderr, repeats it for the operator.
			fatal = node.Err()
			code = 1
		}
	case err := <-serveErr:
		lg.Error("a server stopped", zap.Error(err))
		code = 1
	}

	// The client API first, while the member still takes part in the
	// cluster: the requests in flight are answered as their entries apply.
	// Watch streams last as long as their clients: they end first (each
	// with an end event saying where to resume), or the shutdown would
	// wait its whole timeout on them.
	if err := node.StopWatches(); err != nil {
		lg.Warn("could not end the open watches before stopping", zap.Error(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if stoppedItself {
		// The member is stopping already (Node.Stop runs since it
		// failed): what the client API would wait for can only fail.
		doors.close()
	} else if err := doors.shutdown(ctx); err != nil {
		lg.Warn("the client API did not shut down cleanly", zap.Error(err))
	}
	if err := metricsSrv.Shutdown(ctx); err != nil {
		lg.Warn("the metrics listener did not shut down cleanly", zap.Error(err))
	}
	// Close, not Shutdown: a peer's stream is an endless response, and
	// the member stops talking to peers from here on anyway.
	if err := peerSrv.Close(); err != nil {
		lg.Warn("could not close the peer server", zap.Error(err))
	}
	if err := node.Stop(); err != nil {
		lg.Error("the member did not stop cleanly", zap.Error(err))
		code = 1
	}
	if fatal != nil {
		// The last word, for the operator: the data is as durable as
		// before the failure; restarted once the cause is gone (a full
		// disk freed, say), the member catches up from its data dir.
		refuse("%s", fatalLine(fatal))
	}
	return code
}

// fatalLine is what the member prints last after a fatal stop: one line of
// bounded length, naming the component and what failed (the entry's index,
// for the state machine). Error texts must not hold user values; the cut
// bounds what one that does would leak.
func fatalLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ") // errors.Join's newlines too
	return "stopped on a fatal error: " + redact.Text(s, redact.MaxErrorBytes)
}

// serverErrorLog routes what net/http logs (refused TLS handshakes among
// it: a wrong certificate, a plaintext request) into the member's log.
func serverErrorLog(lg *zap.Logger) *log.Logger {
	l, err := zap.NewStdLogAt(lg, zap.WarnLevel)
	if err != nil {
		return zap.NewStdLog(lg)
	}
	return l
}

// handOver moves leadership to the most caught-up voter before a leader
// stops, so the cluster does not sit leaderless for an election timeout.
func handOver(node *actors.Node, lg *zap.Logger) {
	start := time.Now()
	to, err := node.TransferLeadership()
	switch {
	case errors.Is(err, messages.ErrNotLeader):
		return // a follower stops without a word to anyone
	case errors.Is(err, messages.ErrNoTransferee):
		lg.Info("stopping the leader with no other voter up to hand leadership to")
	case err != nil:
		lg.Warn("could not hand leadership over before stopping", zap.Error(err))
	default:
		if err := node.DrainForwarded(); err != nil {
			lg.Warn("followers still forward requests here after the handover", zap.Error(err))
		}
		lg.Info("handed leadership over before stopping", zap.Uint64("to", to), zap.Duration("took", time.Since(start)))
	}
}
