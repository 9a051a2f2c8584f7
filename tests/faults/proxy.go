package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrNetClosed is returned by Add once Close has begun: a proxy started then
// would outlive the Net that is meant to wait for it.
var ErrNetClosed = errors.New("faults: net is closed")

// ErrDuplicateMember is returned by Add for a member id that already has a
// proxy: two proxies for one member would disagree about its faults.
var ErrDuplicateMember = errors.New("faults: member already has a proxy")

// Peer protocol paths (etcd rafthttp's), as the members send them.
const (
	pathPipeline     = "/raft"
	pathStreamPrefix = "/raft/stream/"
	hdrFrom          = "X-Server-From"
)

// Net is the network between the members of a test cluster: one HTTP proxy
// per member sits on the member's advertised peer address and forwards to
// the address the member really listens on, so faults between members can be
// injected (see Cut, CutOneWay, Isolate) and removed (Heal) without the
// members knowing.
type Net struct {
	lg *zap.Logger
	// ctx is the base of every proxied request: Close cancels it so that
	// held and streaming requests end and their goroutines can be waited.
	ctx    context.Context
	cancel context.CancelFunc
	// upstream carries every proxy's requests to the members; Close drops
	// its idle connections so none outlive the Net.
	upstream *http.Transport
	wg       sync.WaitGroup // Serve loops, connections and handlers

	mu      sync.Mutex
	closed  bool
	proxies map[uint64]*http.Server
	faults  faultSet
	// changed is closed, and replaced, whenever the faults change, waking
	// every held request to look again.
	changed chan struct{}
	streams map[*openStream]struct{}
	holding int // requests held by a fault right now
}

// openStream is a stream being forwarded: data flows from the member behind
// the proxy (src) to the member that dialed it (dst). cancel ends it, which
// drops the dialer's connection.
type openStream struct {
	src, dst uint64
	cancel   context.CancelFunc
}

// NewNet returns a Net with no proxies and no faults.
func NewNet(lg *zap.Logger) *Net {
	ctx, cancel := context.WithCancel(context.Background())
	return &Net{
		lg:     lg,
		ctx:    ctx,
		cancel: cancel,
		upstream: &http.Transport{
			DialContext: (&net.Dialer{Timeout: time.Second}).DialContext,
		},
		proxies: make(map[uint64]*http.Server),
		faults:  newFaultSet(),
		changed: make(chan struct{}),
		streams: make(map[*openStream]struct{}),
	}
}

// Add starts the proxy of member id: it listens on listen (the host:port of
// the member's advertised peer URL) and forwards to target (the member's
// --listen-peer). The member need not be running: while it is down, the
// proxy drops the connections it cannot forward, as a dead host would.
func (n *Net) Add(id uint64, listen, target string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrNetClosed
	}
	if _, ok := n.proxies[id]; ok {
		return fmt.Errorf("member %d: %w", id, ErrDuplicateMember)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("proxy for member %d: %w", id, err)
	}
	lg := n.lg.With(zap.Uint64("proxy", id))
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: target})
		},
		Transport: n.upstream,
		// Streams are endless responses: every write must reach the
		// dialer at once, or it would time the stream out.
		FlushInterval: -1,
		// A member that is down should look down, not answer 502.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			lg.Debug("forward failed; dropping the connection", zap.String("path", r.URL.Path), zap.Error(err))
			dropConn(w, lg)
		},
		ErrorLog: zap.NewStdLog(lg),
	}
	srv := &http.Server{
		Handler:     &proxy{n: n, id: id, rp: rp, lg: lg},
		BaseContext: func(net.Listener) context.Context { return n.ctx },
		// Close waits for each connection's goroutine through this hook:
		// Serve reports StateNew before it returns, so none is missed.
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				n.wg.Add(1)
			case http.StateHijacked, http.StateClosed:
				n.wg.Done()
			}
		},
		ErrorLog: zap.NewStdLog(lg),
	}
	n.proxies[id] = srv
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Warn("proxy stopped", zap.Error(err))
		}
	}()
	return nil
}

// Close stops every proxy, ends every held or forwarded request and waits
// for all of their goroutines.
func (n *Net) Close() error {
	n.mu.Lock()
	n.closed = true
	srvs := make([]*http.Server, 0, len(n.proxies))
	for _, s := range n.proxies {
		srvs = append(srvs, s)
	}
	n.mu.Unlock()
	n.cancel()
	var errs []error
	for _, s := range srvs {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.wg.Wait()
	n.upstream.CloseIdleConnections()
	return errors.Join(errs...)
}

// proxy is the handler of one member's proxy.
type proxy struct {
	n  *Net
	id uint64
	rp *httputil.ReverseProxy
	lg *zap.Logger
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// http.Server.Close does not wait for handlers; the Net does. The
	// connection is counted until here, so this Add never starts from zero.
	p.n.wg.Add(1)
	defer p.n.wg.Done()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == pathPipeline:
		// A pipeline POST carries one message from its sender to us.
		from, err := strconv.ParseUint(r.Header.Get(hdrFrom), 16, 64)
		if err == nil && p.n.hold(r.Context(), from, p.id) {
			p.lg.Debug("blackholed a pipeline message", zap.Uint64("from", from))
			dropConn(w, p.lg)
			return
		}
		p.rp.ServeHTTP(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, pathStreamPrefix):
		p.serveStream(w, r)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// serveStream forwards a stream GET: the member named at the end of the path
// dialed us to receive our member's messages, so data flows from p.id to it.
func (p *proxy) serveStream(w http.ResponseWriter, r *http.Request) {
	dst, err := strconv.ParseUint(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:], 16, 64)
	if err != nil {
		p.rp.ServeHTTP(w, r) // the member answers a malformed path itself
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s := &openStream{src: p.id, dst: dst, cancel: cancel}
	if !p.n.track(s) {
		p.n.hold(r.Context(), p.id, dst)
		p.lg.Debug("blackholed a stream", zap.Uint64("to", dst))
		dropConn(w, p.lg)
		return
	}
	defer p.n.untrack(s)
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// dropConn ends a request with no HTTP answer at all, as a partition or a
// dead host would: an error status would mean something to the member (403
// and 410 mean "you were removed").
func dropConn(w http.ResponseWriter, lg *zap.Logger) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Cannot happen on the plain HTTP/1.1 servers Add starts; should it,
		// the member gets an empty answer instead of a dropped connection.
		lg.Warn("could not drop a connection", zap.Error(err))
		return
	}
	_ = conn.Close()
}
