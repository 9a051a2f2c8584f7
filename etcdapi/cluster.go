package etcdapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// clusterServer is etcd's Cluster service on the member list the state
// machine holds: the same changes, refused for the same reasons, as the
// HTTP API's /v1/members routes.
type clusterServer struct {
	pb.UnimplementedClusterServer
	s *Server
}

// addAttempts bounds how many random ids MemberAdd tries: an id is refused
// when its low 16 bits are a member's (messages.ErrIDPrefixInUse), which a
// random id hits once in 65,536 per member.
const addAttempts = 8

// MemberAdd adds a member under an id chosen here, as etcd does; the new
// member is then started with that id (--id) and the cluster's members
// (--cluster) and --join.
func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if len(r.PeerURLs) != 1 {
		return nil, rpctypes.ErrGRPCMemberBadURLs // a member has one peer URL here
	}
	peerURL, err := membership.PeerURL(r.PeerURLs[0])
	if err != nil {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	for range addAttempts {
		id, err := newMemberID()
		if err != nil {
			return nil, toStatus(err)
		}
		_, err = c.s.actors.AskKV(ctx, messages.AddMember{ID: id, PeerURL: peerURL, Learner: r.IsLearner})
		if errors.Is(err, messages.ErrIDPrefixInUse) || errors.Is(err, messages.ErrIDRemoved) {
			continue
		}
		if err != nil {
			return nil, toStatus(err)
		}
		members, rev, err := c.list(ctx)
		if err != nil {
			return nil, err
		}
		return &pb.MemberAddResponse{
			Header:  c.s.header(ctx, rev),
			Member:  &pb.Member{ID: id, Name: memberName(id), PeerURLs: []string{peerURL}, IsLearner: r.IsLearner},
			Members: members,
		}, nil
	}
	return nil, toStatus(messages.ErrIDPrefixInUse)
}

// newMemberID is a random id raft may use (membership.ValidID).
func newMemberID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if id := binary.BigEndian.Uint64(b[:]) & membership.MaxID; membership.ValidID(id) {
			return id, nil
		}
	}
}

// memberName is the name a member goes by in etcd's answers: members here
// have ids, not names.
func memberName(id uint64) string { return strconv.FormatUint(id, 10) }

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if _, err := c.s.actors.AskKV(ctx, messages.RemoveMember{ID: r.ID}); err != nil {
		return nil, toStatus(err)
	}
	members, rev, err := c.list(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: c.s.header(ctx, rev), Members: members}, nil
}

// MemberUpdate moves a member to another peer URL (raft's UpdateNode): the
// others dial it there once the change is applied. The member itself must
// be restarted listening there, with the new URL in its --cluster.
func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if len(r.PeerURLs) != 1 {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	peerURL, err := membership.PeerURL(r.PeerURLs[0])
	if err != nil {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	if _, err := c.s.actors.AskKV(ctx, messages.UpdateMember{ID: r.ID, PeerURL: peerURL}); err != nil {
		return nil, toStatus(err)
	}
	members, rev, err := c.list(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Header: c.s.header(ctx, rev), Members: members}, nil
}

func (c *clusterServer) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	members, rev, err := c.list(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: c.s.header(ctx, rev), Members: members}, nil
}

// MemberPromote promotes a learner. Only the leader knows whether it has
// caught up: a follower hands the promotion to it.
func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	_, err := c.s.actors.AskKV(ctx, messages.PromoteMember{ID: r.ID})
	if errors.Is(err, messages.ErrNotLeader) {
		_, err = c.s.leader.Ask(ctx, "promote", http.MethodPost, door.PeerPromotePath+strconv.FormatUint(r.ID, 10))
		var remote *door.RemoteError
		if errors.As(err, &remote) {
			err = promoteError(remote)
		}
	}
	if err != nil {
		return nil, toStatus(err)
	}
	members, rev, err := c.list(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{Header: c.s.header(ctx, rev), Members: members}, nil
}

// promoteError is the leader's refusal of a promotion handed to it.
func promoteError(r *door.RemoteError) error {
	switch r.Status {
	case http.StatusNotFound:
		return rpctypes.ErrGRPCMemberNotFound
	case http.StatusConflict:
		if strings.Contains(r.Body, messages.ErrNotLearner.Error()) {
			return rpctypes.ErrGRPCMemberNotLearner
		}
		return rpctypes.ErrGRPCLearnerNotReady
	}
	return remoteStatus(r)
}

// list is the member list as this member applied it.
func (c *clusterServer) list(ctx context.Context) ([]*pb.Member, uint64, error) {
	res, err := c.s.actors.AskKV(ctx, messages.MembersRequest{})
	if err != nil {
		return nil, 0, toStatus(err)
	}
	out := make([]*pb.Member, 0, len(res.Members))
	for _, m := range res.Members {
		out = append(out, &pb.Member{
			ID: m.ID, Name: memberName(m.ID), PeerURLs: []string{m.PeerURL},
			ClientURLs: m.ClientURLs, IsLearner: m.Learner,
		})
	}
	return out, res.Revision, nil
}
