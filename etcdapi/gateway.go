package etcdapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	gw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// GatewayPrefix is where etcd's JSON gateway is served: POST /v3/kv/put,
// /v3/kv/range, /v3/watch, /v3/lease/grant and the rest of etcd's routes,
// with keys and values in base64, as etcd serves them.
const GatewayPrefix = "/v3/"

// Gateway is etcd's JSON gateway: grpc-gateway's translation of each route
// into the gRPC call, made over an in-memory connection to the member's
// own gRPC server. It goes through gRPC, as etcd's does (etcd dials its
// own port), so that the gateway's streams (watch, keep-alive, snapshot)
// are the gRPC ones; in memory, so that it needs neither a port nor the
// client certificate an https port would ask of it: the HTTP request has
// passed the TLS checks already.
type Gateway struct {
	mux  *runtime.ServeMux
	conn *grpc.ClientConn
	ln   *memListener
	done chan struct{}
}

// NewGateway serves g on an in-memory listener and returns the gateway
// to it. Close it after g has stopped.
func NewGateway(g *grpc.Server) (*Gateway, error) {
	ln := newMemListener()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(ln) // returns when g stops or ln closes
	}()
	conn, err := grpc.NewClient("passthrough:///gateway",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.dial(ctx) }),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<31-1)))
	if err != nil {
		_ = ln.Close()
		<-done
		return nil, err
	}
	// etcd's marshaling: field names as in the .proto, unknown fields
	// ignored.
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}))
	ctx := context.Background()
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		gw.RegisterKVHandler, gw.RegisterWatchHandler, gw.RegisterLeaseHandler,
		gw.RegisterClusterHandler, gw.RegisterMaintenanceHandler, gw.RegisterAuthHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			_ = conn.Close()
			_ = ln.Close()
			<-done
			return nil, err
		}
	}
	return &Gateway{mux: mux, conn: conn, ln: ln, done: done}, nil
}

// ServeHTTP serves the gateway's routes; mount it at GatewayPrefix.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// Close closes the gateway's connection and listener.
func (g *Gateway) Close() error {
	err := g.conn.Close()
	_ = g.ln.Close()
	<-g.done
	return err
}

// memListener is a net.Listener whose connections are in-memory pipes.
type memListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

// errListenerClosed is what Accept and dial return once the listener is
// closed.
var errListenerClosed = errors.New("etcdapi: gateway listener closed")

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, errListenerClosed
	}
}

func (l *memListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, errListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "gateway" }
