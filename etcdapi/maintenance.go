package etcdapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/messages"
)

// SnapshotSource streams a consistent copy of the member's db
// (door.BackupSource).
type SnapshotSource = door.BackupSource

// maintenanceServer is etcd's Maintenance service: status, hashes,
// alarms, backups and leadership moves.
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

func (m *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	st, err := m.s.actors.AskStatus(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	m.s.noteTerm(st.Term)
	ss, err := m.storeStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.StatusResponse{
		Header:           m.s.header(ctx, ss.Revision),
		Version:          m.s.cfg.Version,
		DbSize:           ss.DBSize,
		DbSizeInUse:      ss.DBSizeInUse,
		DbSizeQuota:      int64(m.s.cfg.Quota),
		Leader:           st.Leader,
		RaftIndex:        st.Commit,
		RaftTerm:         st.Term,
		RaftAppliedIndex: st.Applied,
		StorageVersion:   Version,
	}
	for _, id := range st.Learners {
		if id == st.ID {
			out.IsLearner = true
		}
	}
	if st.Leader == 0 {
		out.Errors = append(out.Errors, rpctypes.ErrGRPCNoLeader.Error())
	}
	if ss.NoSpace {
		out.Errors = append(out.Errors, "memberID:"+memberName(m.s.cfg.MemberID)+" alarm:NOSPACE")
	}
	return out, nil
}

// storeStatus asks the kv actor for the state's sizes and revisions.
func (m *maintenanceServer) storeStatus(ctx context.Context) (messages.StoreStatus, error) {
	ss, err := m.s.actors.AskStoreStatus(ctx)
	if err != nil {
		return messages.StoreStatus{}, toStatus(err)
	}
	return ss, nil
}

// HashKV hashes every key and value the member holds (the digest the HTTP
// API serves at /v1/digest): members that applied the same entries answer
// the same hash. Only the current revision is hashed.
func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	reply, err := m.s.actors.Ask(ctx, m.s.cfg.KV, messages.DigestRequest{})
	if err != nil {
		return nil, toStatus(err)
	}
	d, ok := reply.(messages.Digest)
	if !ok || len(d.Sum) < 8 {
		return nil, status.Errorf(codes.Internal, "etcdserver: the state machine answered a digest request with %T", reply)
	}
	ss, err := m.storeStatus(ctx)
	if err != nil {
		return nil, err
	}
	if r.Revision != 0 && uint64(r.Revision) != ss.Revision {
		return nil, status.Error(codes.Unimplemented, "etcdserver: HashKV hashes the current revision only (revision 0)")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], []byte(d.Sum[:8])); err != nil {
		return nil, status.Errorf(codes.Internal, "etcdserver: digest: %v", err)
	}
	return &pb.HashKVResponse{
		Header:          m.s.header(ctx, ss.Revision),
		Hash:            binary.BigEndian.Uint32(sum[:]),
		CompactRevision: int64(ss.Compacted),
		HashRevision:    int64(ss.Revision),
	}, nil
}

// Alarm lists the space alarm: NOSPACE for this member while its data is
// too near the quota for a write of the largest size to fit. The quota
// refuses each write that would cross it, on every member alike, and frees
// itself once deletes make room, so there is nothing to activate or
// disarm: those actions answer with the list as it is.
func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	ss, err := m.storeStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.AlarmResponse{Header: m.s.header(ctx, ss.Revision)}
	if ss.NoSpace {
		out.Alarms = []*pb.AlarmMember{{MemberID: m.s.cfg.MemberID, Alarm: pb.AlarmType_NOSPACE}}
	}
	return out, nil
}

// snapshotChunk is the size of each message of a Snapshot stream: etcd's,
// small enough to keep a slow client from holding much of the db in
// flight.
const snapshotChunk = 32 * 1024

// Snapshot streams the db once the kv actor committed what it applied (a
// backup holds every write this member acknowledged), then, as etcd's last
// message, the SHA-256 of all of it, which etcdutl checks on restore.
func (m *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	if m.s.cfg.Snapshot == nil {
		return status.Error(codes.Unavailable, "etcdserver: this member serves no snapshots")
	}
	rc, size, _, err := m.s.actors.Backup(stream.Context(), m.s.cfg.Snapshot)
	if err != nil {
		return toStatus(err)
	}
	defer rc.Close()
	h := sha256.New()
	buf := make([]byte, snapshotChunk)
	sent := int64(0)
	for {
		n, err := io.ReadFull(rc, buf)
		if n > 0 {
			sent += int64(n)
			h.Write(buf[:n])
			resp := &pb.SnapshotResponse{
				RemainingBytes: uint64(max(size-sent, 0)),
				Blob:           append([]byte(nil), buf[:n]...),
				Version:        Version,
			}
			if serr := stream.Send(resp); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return status.Errorf(codes.Internal, "etcdserver: read the db: %v", err)
		}
	}
	if sent != size {
		return status.Errorf(codes.Internal, "etcdserver: the db stream held %d bytes, not %d", sent, size)
	}
	return stream.Send(&pb.SnapshotResponse{Blob: h.Sum(nil), Version: Version})
}

// MoveLeader hands leadership to another voter. Asked of a follower it
// answers ErrGRPCNotLeader, as etcd's: etcdctl asks the leader.
func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	st, err := m.s.actors.AskStatus(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if st.Leader != st.ID {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	if _, ok := st.Members[r.TargetID]; !ok || r.TargetID == st.ID {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	reply, err := m.s.actors.Ask(ctx, m.s.cfg.Raft, messages.TransferLeadership{To: r.TargetID})
	if err != nil {
		return nil, toStatus(err)
	}
	if lt, ok := reply.(messages.LeadershipTransferred); ok && lt.Err != nil {
		return nil, toStatus(lt.Err)
	}
	return &pb.MoveLeaderResponse{Header: m.s.header(ctx, 0)}, nil
}

// defragTimeout bounds a defragmentation the client set no deadline for:
// the copy of a large db takes minutes on a slow disk, and the member
// serves meanwhile, so waiting is cheap.
const defragTimeout = 10 * time.Minute

// Defragment rewrites this member's db compactly, while it goes on serving
// (messages.Defragment): etcdctl defrag asks each endpoint in turn.
func (m *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	a := m.s.actors
	a.Timeout = defragTimeout
	reply, err := a.Ask(ctx, m.s.cfg.KV, messages.Defragment{})
	if err != nil {
		return nil, toStatus(err)
	}
	if _, ok := reply.(messages.Defragmented); !ok {
		return nil, status.Errorf(codes.Internal, "etcdserver: the state machine answered a defragmentation with %T", reply)
	}
	return &pb.DefragmentResponse{Header: m.s.header(ctx, 0)}, nil
}

func (m *maintenanceServer) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	return nil, unimplemented("Hash (deprecated by etcd; use HashKV)")
}

func (m *maintenanceServer) Downgrade(context.Context, *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, unimplemented("Downgrade (a member runs one version of the state machine format)")
}
