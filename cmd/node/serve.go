package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/soheilhy/cmux"
	"google.golang.org/grpc"

	"github.com/raftkv/node/etcdapi"
)

// clientDoors serves both client APIs on every client listener, as etcd
// serves gRPC and HTTP on one port: the HTTP API (and etcd's JSON gateway
// under /v3/) to HTTP/1 and HTTP/2 requests, etcd's gRPC API to gRPC ones.
//
// On a plain listener cmux tells them apart by the first bytes (an HTTP/2
// preface whose headers say application/grpc goes to the gRPC server's
// own transport); under TLS the HTTP server takes every connection and
// hands gRPC requests to the gRPC server's ServeHTTP, as etcd does, since
// the gRPC transport cannot share a TLS connection.
type clientDoors struct {
	http    *http.Server
	grpc    *grpc.Server
	gateway *etcdapi.Gateway
}

// grpcStopTimeout bounds how long a stop waits for gRPC calls in flight to
// finish before ending the rest: lease keep-alive streams last as long as
// their clients, and watch streams were ended just before.
const grpcStopTimeout = 2 * time.Second

// newClientDoors builds the servers: api is the HTTP API's handler.
func newClientDoors(api http.Handler, g *grpc.Server, srv *http.Server) (*clientDoors, error) {
	gwy, err := etcdapi.NewGateway(g)
	if err != nil {
		return nil, err
	}
	d := &clientDoors{http: srv, grpc: g, gateway: gwy}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc"):
			g.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, etcdapi.GatewayPrefix):
			gwy.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
	return d, nil
}

// serve serves every listener; a server that stops on its own reports on
// errc.
func (d *clientDoors) serve(lns []net.Listener, errc chan<- error) {
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	for _, ln := range lns {
		if _, isTLS := ln.(tlsListener); isTLS {
			serveAll(d.http, []net.Listener{ln}, errc)
			continue
		}
		m := cmux.New(&closeOnce{Listener: ln})
		grpcL := m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
		httpL := m.Match(cmux.Any())
		go func() {
			if err := d.grpc.Serve(grpcL); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, cmux.ErrListenerClosed) {
				report(err)
			}
		}()
		serveAll(d.http, []net.Listener{httpL}, errc)
		go func() {
			if err := m.Serve(); err != nil && !errors.Is(err, net.ErrClosed) {
				report(err)
			}
		}()
	}
}

// close ends both servers and every connection at once: for a member that
// stopped by itself (a fatal error, its removal), whose requests in flight
// can only be told it stopped. Waiting for them, as shutdown does, kept the
// HTTP server answering "stopped" to every request for grpcStopTimeout
// whenever a gRPC stream was open (a lease keep-alive, or a watch the
// stopped hub could no longer end); the likely cause of one soak round's
// 2,124 unknown writes, 568 of them "server stopped" over gRPC.
func (d *clientDoors) close() {
	d.grpc.Stop()
	_ = d.http.Close()
	_ = d.gateway.Close()
}

// shutdown stops the gRPC server (its calls in flight get grpcStopTimeout
// to finish), then the HTTP server within ctx, then the gateway.
func (d *clientDoors) shutdown(ctx context.Context) error {
	stopped := make(chan struct{})
	go func() {
		d.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(grpcStopTimeout):
		d.grpc.Stop()
		<-stopped
	}
	err := d.http.Shutdown(ctx)
	_ = d.gateway.Close()
	return err
}

// closeOnce closes its listener once, and answers every later Close nil.
// cmux's listeners each close the listener they share (their Close is the
// shared one's), so the gRPC server's stop closed it and the HTTP
// server's shutdown, coming second, failed with "use of closed network
// connection" whenever its Serve had not returned yet (a race that
// cmd/node's TestStopEndsWatchStreams lost in CI).
type closeOnce struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *closeOnce) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// tlsListener is a listener whose connections are TLS ones (listenAll
// makes them), so that serve can tell it from a plain one.
type tlsListener struct{ net.Listener }

// withH2 makes a client listener's TLS config offer HTTP/2 too: gRPC
// clients require it (ALPN "h2"); HTTP/1 clients still get HTTP/1.1. It
// changes c in place: tlsfiles' configs copy themselves for each handshake
// (GetConfigForClient), so a copy made here would not be served.
func withH2(c *tls.Config) *tls.Config {
	if c != nil {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	return c
}
