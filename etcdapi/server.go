package etcdapi

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/watch"
)

// Config wires etcd's API to a member's actors.
type Config struct {
	Root      *actor.RootContext
	KV        *actor.PID // the kv actor: client requests of package messages
	Raft      *actor.PID // the raft actor: messages.StatusRequest, TransferLeadership
	Watch     *actor.PID // the watch hub; nil answers Watch Unavailable
	History   watch.History
	ClusterID uint64
	MemberID  uint64
	// Format must be the kv actor's: a format without revisions (etcd's
	// raftexample's) serves none of etcd's API but Status and the
	// member RPCs.
	Format apply.Format
	// PeerClient reaches the leader's peer API, for what only the leader
	// answers (keep-alives, a lease's remaining TTL, promotions).
	PeerClient *http.Client
	// Snapshot streams the db as of its last commit (kv.State's Backup)
	// for Maintenance.Snapshot; nil answers it Unavailable.
	Snapshot SnapshotSource
	// Quota is --quota-backend-bytes, for Alarm (0: none).
	Quota uint64
	// Version is what Status reports as the server's version.
	Version string
	// MaxRequestBytes is the largest request taken (--max-request-bytes).
	MaxRequestBytes int
	Timeout         time.Duration // per request; 0: door.DefaultTimeout
	Logger          *zap.Logger
}

// Server is etcd's v3 API on a member: the KV, Watch, Lease, Cluster and
// Maintenance services, and Auth answering Unimplemented. It keeps no
// state of a request beyond the request: everything is asked of the actors.
type Server struct {
	cfg    Config
	actors door.Actors
	leader door.Leader
	log    *zap.Logger

	// term caches the raft term for response headers, refreshed at most
	// every termTTL: asking the raft actor on every request would add a
	// mailbox round trip to each.
	termMu   sync.Mutex
	term     uint64
	termTime time.Time
	// revision is the newest store revision an answer has carried: the
	// header of an answer that reads no revision of its own (a
	// keep-alive, a member change) gives it.
	revision atomic.Uint64
}

// termTTL is how stale a header's raft term may be. A client reads the term
// to tell leaders apart, and a term changes on an election, which takes
// at least an election timeout (1 s by default): a tenth of it is fresh
// enough.
const termTTL = 100 * time.Millisecond

// New returns etcd's API over cfg's actors.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Version == "" {
		cfg.Version = Version
	}
	a := door.Actors{Root: cfg.Root, KV: cfg.KV, Raft: cfg.Raft, Timeout: cfg.Timeout}
	return &Server{
		cfg:    cfg,
		actors: a,
		leader: door.Leader{Actors: a, Client: cfg.PeerClient, ClusterID: cfg.ClusterID},
		log:    cfg.Logger,
	}
}

// Version is the etcd server version this member says it speaks: etcdctl
// and clientv3 compare it with what they need (3.6's API is served).
const Version = "3.6.0"

// streamWorkers is the size of the gRPC server's pool of goroutines: 256
// calls in flight, each idle worker a few KiB.
const streamWorkers = 256

// grpcOverheadBytes is what a request may take beyond MaxRequestBytes: the
// protobuf framing of a put whose value is at the limit, as etcd allows.
const grpcOverheadBytes = 512 * 1024

// NewGRPCServer returns a gRPC server with every service of s registered,
// its limits those of etcd's: requests up to MaxRequestBytes plus framing,
// answers as large as a range can make them, and keep-alive pings from
// clients (clientv3 pings every 30 s by default) allowed.
func (s *Server) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	limit := s.cfg.MaxRequestBytes
	if limit <= 0 {
		limit = 3 << 19 // 1.5 MiB, etcd's default --max-request-bytes
	}
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(limit + grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// A pool of goroutines serves the calls instead of one new
		// goroutine each: a new one starts with a small stack and grows
		// it, copying, on every call, which took a tenth of the leader's
		// CPU under etcd's benchmark (put, 64 clients). A call waits on
		// the kv actor for a commit, so the pool is sized for the calls
		// in flight, not the cores; past it, calls get goroutines of
		// their own as before.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	base = append(base, grpc.ChainUnaryInterceptor(refuseAuth), WatchCodec())
	g := grpc.NewServer(append(base, opts...)...)
	s.Register(g)
	return g
}

// Register registers every service of s on r.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	pb.RegisterKVServer(r, &kvServer{s: s})
	pb.RegisterWatchServer(r, &watchServer{s: s})
	pb.RegisterLeaseServer(r, &leaseServer{s: s})
	pb.RegisterClusterServer(r, &clusterServer{s: s})
	pb.RegisterMaintenanceServer(r, &maintenanceServer{s: s})
	pb.RegisterAuthServer(r, authServer{})
}

// header is a response's header at store revision rev; 0 is the newest
// revision this door has seen.
func (s *Server) header(ctx context.Context, rev uint64) *pb.ResponseHeader {
	if rev == 0 {
		rev = s.revision.Load()
	} else if seen := s.revision.Load(); rev > seen {
		s.revision.CompareAndSwap(seen, rev) // a lost race leaves a newer one
	}
	return &pb.ResponseHeader{
		ClusterId: s.cfg.ClusterID,
		MemberId:  s.cfg.MemberID,
		Revision:  int64(rev),
		RaftTerm:  s.raftTerm(ctx),
	}
}

// raftTerm is the raft term as of at most termTTL ago; 0 if the raft actor
// cannot say.
func (s *Server) raftTerm(ctx context.Context) uint64 {
	s.termMu.Lock()
	term, fresh := s.term, time.Since(s.termTime) < termTTL
	s.termMu.Unlock()
	if fresh {
		return term
	}
	st, err := s.actors.AskStatus(ctx)
	if err != nil {
		return term
	}
	s.noteTerm(st.Term)
	return st.Term
}

// noteTerm records a term just learnt from the raft actor.
func (s *Server) noteTerm(term uint64) {
	s.termMu.Lock()
	s.term, s.termTime = term, time.Now()
	s.termMu.Unlock()
}

// refuseAuth answers every Auth RPC with what to use instead, where the
// generated stubs would say only "method not implemented".
func refuseAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, "/etcdserverpb.Auth/") {
		return nil, unimplemented("authentication (users and roles); client certificates (--client-cert-auth) control access")
	}
	return next(ctx, req)
}

// authServer answers every Auth RPC Unimplemented: this member has no
// users or roles; client certificates (--client-cert-auth) are its access
// control.
type authServer struct {
	pb.UnimplementedAuthServer
}
