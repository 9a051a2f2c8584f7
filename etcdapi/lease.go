package etcdapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/messages"
)

// leaseServer is etcd's Lease service on the leases of package kv: grants
// and revocations go through raft; keep-alives and remaining TTLs are the
// leader's to answer, and a follower hands them to the leader's peer API,
// as the HTTP API does (door.Leader).
type leaseServer struct {
	pb.UnimplementedLeaseServer
	s *Server
}

func (l *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if r.ID < 0 {
		return nil, status.Error(codes.InvalidArgument, "etcdserver: a lease id is positive")
	}
	if r.TTL > messages.MaxLeaseTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	res, err := l.s.actors.AskKV(ctx, messages.LeaseGrant{ID: r.ID, TTL: r.TTL})
	if err != nil {
		return nil, toStatus(err)
	}
	if res.Lease == nil {
		return nil, status.Error(codes.Internal, "etcdserver: the state machine granted no lease")
	}
	return &pb.LeaseGrantResponse{Header: l.s.header(ctx, res.Revision), ID: res.Lease.ID, TTL: res.Lease.TTL}, nil
}

func (l *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if r.ID <= 0 {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	res, err := l.s.actors.AskKV(ctx, messages.LeaseRevoke{ID: r.ID})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LeaseRevokeResponse{Header: l.s.header(ctx, res.Revision)}, nil
}

// LeaseKeepAlive answers each keep-alive on the stream in turn. A lease
// the state no longer holds (revoked, expired, or whose revocation is
// being applied) answers TTL 0, as etcd's: the holder learns it lost the
// lease, and keeps the stream. Any other error ends the stream; clientv3
// opens another.
func (l *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ttl, err := l.keepAlive(ctx, req.ID)
		switch {
		case errors.Is(err, messages.ErrLeaseNotFound), errors.Is(err, messages.ErrLeaseExpiring):
			ttl = 0
		case err != nil:
			return toStatus(err)
		}
		resp := &pb.LeaseKeepAliveResponse{Header: l.s.header(ctx, 0), ID: req.ID, TTL: ttl}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// keepAlive renews lease id here if this member leads, at the leader
// otherwise, and returns the TTL granted.
func (l *leaseServer) keepAlive(ctx context.Context, id int64) (int64, error) {
	if id <= 0 {
		return 0, messages.ErrLeaseNotFound
	}
	res, err := l.s.actors.AskKV(ctx, messages.LeaseKeepAlive{ID: id})
	if errors.Is(err, messages.ErrNotLeader) {
		body, err := l.s.leader.Ask(ctx, "keep the lease alive", http.MethodPost,
			door.PeerLeasesPrefix+strconv.FormatInt(id, 10)+"/keepalive")
		if err != nil {
			return 0, leaderLeaseError(err)
		}
		var a struct {
			TTL int64 `json:"ttl"`
		}
		if err := json.Unmarshal(body, &a); err != nil {
			return 0, status.Errorf(codes.Internal, "etcdserver: the leader's keep-alive answer: %v", err)
		}
		return a.TTL, nil
	}
	if err != nil {
		return 0, err
	}
	if res.Lease == nil {
		return 0, status.Error(codes.Internal, "etcdserver: the state machine answered a keep-alive with no lease")
	}
	return res.Lease.Remaining, nil
}

// leaderLeaseError is the leader's answer to a lease request handed to it:
// its 404 is the lease's absence.
func leaderLeaseError(err error) error {
	var remote *door.RemoteError
	if errors.As(err, &remote) && remote.Status == http.StatusNotFound {
		return messages.ErrLeaseNotFound
	}
	if errors.As(err, &remote) && remote.Status == http.StatusServiceUnavailable {
		return messages.ErrLeaseExpiring
	}
	return err
}

func (l *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	lease, err := l.query(ctx, r.ID, r.Keys)
	if errors.Is(err, messages.ErrLeaseNotFound) {
		// etcd answers an unknown lease with TTL -1, not an error.
		return &pb.LeaseTimeToLiveResponse{Header: l.s.header(ctx, 0), ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.LeaseTimeToLiveResponse{Header: l.s.header(ctx, 0), ID: lease.ID, TTL: lease.Remaining, GrantedTTL: lease.TTL}
	for _, k := range lease.Keys {
		out.Keys = append(out.Keys, []byte(k))
	}
	return out, nil
}

// query reads lease id here if this member leads, at the leader otherwise.
func (l *leaseServer) query(ctx context.Context, id int64, keys bool) (messages.Lease, error) {
	if id <= 0 {
		return messages.Lease{}, messages.ErrLeaseNotFound
	}
	res, err := l.s.actors.AskKV(ctx, messages.LeaseQuery{ID: id, Keys: keys})
	if errors.Is(err, messages.ErrNotLeader) {
		target := door.PeerLeasesPrefix + strconv.FormatInt(id, 10)
		if keys {
			target += "?keys=true"
		}
		body, err := l.s.leader.Ask(ctx, "read the lease", http.MethodGet, target)
		if err != nil {
			return messages.Lease{}, leaderLeaseError(err)
		}
		return decodeLease(body)
	}
	if err != nil {
		return messages.Lease{}, err
	}
	if res.Lease == nil {
		return messages.Lease{}, status.Error(codes.Internal, "etcdserver: the state machine answered a lease read with no lease")
	}
	return *res.Lease, nil
}

// decodeLease reads the peer API's answer to a lease read
// (messages.Lease.AppendJSON): a key that is not UTF-8 comes as key_b64.
func decodeLease(body []byte) (messages.Lease, error) {
	var a struct {
		ID         string `json:"id"`
		GrantedTTL int64  `json:"granted_ttl"`
		TTL        *int64 `json:"ttl"`
		Keys       []struct {
			Key    *string `json:"key"`
			KeyB64 *string `json:"key_b64"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return messages.Lease{}, status.Errorf(codes.Internal, "etcdserver: the leader's lease answer: %v", err)
	}
	id, err := strconv.ParseInt(a.ID, 10, 64)
	if err != nil {
		return messages.Lease{}, status.Errorf(codes.Internal, "etcdserver: the leader's lease answer: id %q", a.ID)
	}
	l := messages.Lease{ID: id, TTL: a.GrantedTTL, Remaining: -1}
	if a.TTL != nil {
		l.Remaining = *a.TTL
	}
	for _, k := range a.Keys {
		switch {
		case k.Key != nil:
			l.Keys = append(l.Keys, *k.Key)
		case k.KeyB64 != nil:
			b, err := base64.StdEncoding.DecodeString(*k.KeyB64)
			if err != nil {
				return messages.Lease{}, status.Errorf(codes.Internal, "etcdserver: the leader's lease answer: a key: %v", err)
			}
			l.Keys = append(l.Keys, string(b))
		}
	}
	return l, nil
}

func (l *leaseServer) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	res, err := l.s.actors.AskKV(ctx, messages.LeaseList{})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.LeaseLeasesResponse{Header: l.s.header(ctx, res.Revision)}
	for _, lease := range res.Leases {
		out.Leases = append(out.Leases, &pb.LeaseStatus{ID: lease.ID})
	}
	return out, nil
}
