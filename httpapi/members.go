package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/version"
)

const membersPrefix = "/v1/members/"

// membersBody is the /v1/members answer; a list sorted by id rather than
// a map, so that the output is stable and ids stay numbers in JSON.
type membersBody struct {
	Members []messages.Member `json:"members"`
}

// addMemberBody is the body of POST /v1/members/<id>.
type addMemberBody struct {
	PeerURL string `json:"peer_url"`
	Learner bool   `json:"learner"`
}

// leaderBody is the body of POST /v1/leader and its answer.
type leaderBody struct {
	ID uint64 `json:"id"`
}

type leaderAnswer struct {
	Leader uint64 `json:"leader"`
}

func (h *handler) serveMembers(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && !h.noParams(w, r) {
		return
	}
	if ms, ok := h.members(w, r); ok {
		h.writeJSON(w, r, membersBody{Members: ms})
	}
}

// members serves the first half of a GET of the member list: the method,
// and the kv actor's answer. On failure it has answered the client.
func (h *handler) members(w http.ResponseWriter, r *http.Request) ([]messages.Member, bool) {
	if r.Method != http.MethodGet {
		refuseMethod(w, r, getOnly)
		return nil, false
	}
	res, err := h.askKV(messages.MembersRequest{})
	if err != nil {
		h.fail(w, r, err, false)
		return nil, false
	}
	if res.Members == nil {
		return []messages.Member{}, true
	}
	return res.Members, true
}

// serveMember serves /v1/members/<id> (POST adds, DELETE removes) and
// /v1/members/<id>/promote (POST).
func (h *handler) serveMember(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, membersPrefix)
	idText, action, _ := strings.Cut(rest, "/")
	allow := "POST, DELETE"
	switch action {
	case "":
	case "promote":
		allow = "POST"
	default:
		notFound(w, r)
		return
	}
	if !slices.Contains(strings.Split(allow, ", "), r.Method) {
		refuseMethod(w, r, allow)
		return
	}
	if !h.noParams(w, r) {
		return
	}
	id, err := parseMemberID(idText)
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	switch {
	case action == "promote":
		h.promoteMember(w, r, id)
	case r.Method == http.MethodPost:
		h.addMember(w, r, id, true)
	default:
		h.removeMember(w, r, id, http.StatusNoContent)
	}
}

// noParams refuses a request with any query parameter, for the routes that
// take none; it answers the client itself and reports whether to go on.
func (h *handler) noParams(w http.ResponseWriter, r *http.Request) bool {
	if _, err := queryParams(r.URL.RawQuery, r.Method+" "+r.URL.Path); err != nil {
		h.fail(w, r, err, false)
		return false
	}
	return true
}

func (h *handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		refuseMethod(w, r, getOnly)
		return
	}
	if !h.noParams(w, r) {
		return
	}
	st, err := h.askStatus()
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	ss, err := h.actors().AskStoreStatus(r.Context())
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	h.writeJSON(w, r, statusBody{Status: st, Version: version.Version, DataFormat: version.DataFormat, DB: dbStatus{
		Revision:  ss.Revision,
		Compacted: ss.Compacted,
		Size:      ss.DBSize,
		InUse:     ss.DBSizeInUse,
		Used:      ss.Used,
		Quota:     h.quota,
		NoSpace:   ss.NoSpace,
	}})
}

// statusBody is the answer to GET /v1/status: the raft actor's status,
// the state's (db), and what this member runs (package version; GET
// /version has the cluster's).
type statusBody struct {
	messages.Status
	Version    string   `json:"version"`
	DataFormat string   `json:"data_format"`
	DB         dbStatus `json:"db"`
}

// dbStatus is what the state machine holds and how much room it takes:
// the db's size as of its last commit and the part of it in use (what
// defragmentation would leave, roughly: Size-InUse is bbolt's free
// pages), and the bytes counted against the quota (0: none). NoSpace is
// etcd's NOSPACE alarm: a write of the largest request might not fit.
type dbStatus struct {
	Revision  uint64 `json:"revision"`
	Compacted uint64 `json:"compacted_revision"`
	Size      int64  `json:"size"`
	InUse     int64  `json:"size_in_use"`
	Used      uint64 `json:"quota_used"`
	Quota     uint64 `json:"quota"`
	NoSpace   bool   `json:"no_space"`
}

// serveHealth serves /healthz, as the metrics listener does (health.go).
func (h *handler) serveHealth(w http.ResponseWriter, r *http.Request) { h.health().serveHealthz(w, r) }

// addMember serves raftexample's POST /<id>, whose body is the peer URL (a
// voter, answered 204), and POST /v1/members/<id>, whose body is JSON
// (answered 201 with the member), once the change is applied here.
func (h *handler) addMember(w http.ResponseWriter, r *http.Request, id uint64, jsonBody bool) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	req := addMemberBody{PeerURL: strings.TrimSpace(string(body))}
	if jsonBody {
		req = addMemberBody{}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			h.fail(w, r, fmt.Errorf(`%w: body must be JSON {"peer_url": "http://host:port", "learner": false}: %w`, messages.ErrBadRequest, err), true)
			return
		}
	}
	peerURL, err := parsePeerURL(req.PeerURL)
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	if _, err := h.askKV(messages.AddMember{ID: id, PeerURL: peerURL, Learner: req.Learner}); err != nil {
		h.fail(w, r, err, true)
		return
	}
	if !jsonBody {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.writeJSONStatus(w, r, http.StatusCreated, messages.Member{ID: id, PeerURL: peerURL, ClientURLs: []string{}, Learner: req.Learner})
}

// removeMember serves raftexample's DELETE /<id> and DELETE /v1/members/<id>.
func (h *handler) removeMember(w http.ResponseWriter, r *http.Request, id uint64, okStatus int) {
	if _, err := h.askKV(messages.RemoveMember{ID: id}); err != nil {
		h.fail(w, r, err, true)
		return
	}
	w.WriteHeader(okStatus)
}

// promoteMember serves POST /v1/members/<id>/promote. Only the leader knows
// whether the learner has caught up: a follower asks the leader, through
// its peer port, as etcd does.
func (h *handler) promoteMember(w http.ResponseWriter, r *http.Request, id uint64) {
	_, err := h.askKV(messages.PromoteMember{ID: id})
	if errors.Is(err, messages.ErrUnknownMember) || errors.Is(err, messages.ErrNotLearner) {
		// A follower may not have applied the learner's addition (or its
		// promotion) yet: the leader, which has, decides.
		if st, serr := h.askStatus(); serr == nil && st.Leader != 0 && st.Leader != st.ID {
			err = messages.ErrNotLeader
		}
	}
	if errors.Is(err, messages.ErrNotLeader) {
		body, err := h.promoteAtLeader(r, id)
		if err != nil {
			h.fail(w, r, err, true)
			return
		}
		writeJSONBytes(w, body)
		return
	}
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	h.writeMember(w, r, id)
}

// writeMember answers 200 with member id as this member lists it.
func (h *handler) writeMember(w http.ResponseWriter, r *http.Request, id uint64) {
	res, err := h.askKV(messages.MembersRequest{})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	for _, m := range res.Members {
		if m.ID == id {
			h.writeJSON(w, r, m)
			return
		}
	}
	// Changed, then removed before we looked: the change still stood.
	w.WriteHeader(http.StatusNoContent)
}

// serveLeader serves POST /v1/leader {"id": N}: leadership moves to member N,
// answered once it leads.
func (h *handler) serveLeader(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		refuseMethod(w, r, "POST")
		return
	}
	if !h.noParams(w, r) {
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var req leaderBody
	if err := json.Unmarshal(body, &req); err != nil || req.ID == 0 {
		h.fail(w, r, fmt.Errorf(`%w: body must be JSON {"id": N} with N a member id`, messages.ErrBadRequest), false)
		return
	}
	reply, err := h.ask(h.raft, messages.TransferLeadership{To: req.ID})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	lt, ok := reply.(messages.LeadershipTransferred)
	if !ok {
		h.fail(w, r, fmt.Errorf("the raft actor answered a leadership transfer with an unexpected %T", reply), false)
		return
	}
	if lt.Err != nil {
		h.fail(w, r, lt.Err, false)
		return
	}
	h.writeJSON(w, r, leaderAnswer{Leader: lt.Leader})
}

// errNotANumber is parseMemberID's error for text that is no number at all;
// raftexample's routes tell it apart (compatMemberID).
var errNotANumber = fmt.Errorf("%w: a member id is an unsigned integer", messages.ErrBadRequest)

// parseMemberID accepts the forms raftexample accepts (base prefix
// allowed), but refuses 0, which raft reserves for "none", and the two
// largest ids, which raft reserves for its local storage threads.
func parseMemberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 0, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%w: member id %s is past the largest, %d", messages.ErrBadRequest, echo(s), uint64(membership.MaxID))
	case err != nil:
		return 0, fmt.Errorf("%w, not %s", errNotANumber, echo(s))
	case !membership.ValidID(id):
		return 0, fmt.Errorf("%w: member id %d is reserved by raft", messages.ErrBadRequest, id)
	}
	return id, nil
}

// parsePeerURL refuses URLs the transport could never dial, before they are
// committed to the cluster's membership for good, and writes the URL in the
// one form membership keeps (membership.PeerURL), so that one member's URL
// cannot be added twice under two spellings.
func parsePeerURL(s string) (string, error) {
	u, err := membership.PeerURL(s)
	var ue *membership.URLError
	if errors.As(err, &ue) {
		return "", fmt.Errorf("%w: peer URL %s: %s", messages.ErrBadRequest, echo(s), ue.Why)
	}
	return u, err
}
