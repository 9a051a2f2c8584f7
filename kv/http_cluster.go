package kv

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// apiMember is one entry of the /v1/members answer.
type apiMember struct {
	ID      uint64 `json:"id"`
	PeerURL string `json:"peer_url"`
}

// apiMembersBody is the /v1/members answer; a list sorted by id rather than
// a map, so that the output is stable and ids stay numbers in JSON.
type apiMembersBody struct {
	Members []apiMember `json:"members"`
}

func (h *apiHandler) serveMembers(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		apiMethodNotAllowed(w, apiGetOnly)
		return
	}
	res, err := h.askKV(messages.MembersRequest{})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	body := apiMembersBody{Members: make([]apiMember, 0, len(res.Members))}
	for id, u := range res.Members {
		body.Members = append(body.Members, apiMember{ID: id, PeerURL: u})
	}
	slices.SortFunc(body.Members, func(a, b apiMember) int { return cmp.Compare(a.ID, b.ID) })
	h.writeJSON(w, r, body)
}

func (h *apiHandler) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		apiMethodNotAllowed(w, apiGetOnly)
		return
	}
	st, err := h.askStatus()
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	h.writeJSON(w, r, st)
}

// serveHealth reports healthy only when the raft actor answers and knows a
// leader: a node without one can serve no write and no linearizable read.
func (h *apiHandler) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		apiMethodNotAllowed(w, apiGetOnly)
		return
	}
	st, err := h.askStatus()
	if err != nil {
		h.unhealthy(w, r, fmt.Errorf("raft actor did not report its status: %w", err))
		return
	}
	if st.Leader == 0 {
		h.unhealthy(w, r, messages.ErrNoLeader)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}

// unhealthy answers 503 whatever the cause, since a health checker needs only
// "take this node out of rotation"; the body says why. It logs at debug only:
// checkers poll, and a leaderless member already says so in raft's own log.
func (h *apiHandler) unhealthy(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Debug("unhealthy", zap.String("path", r.URL.Path), zap.Error(err))
	http.Error(w, "unhealthy: "+apiOneLine(err.Error()), http.StatusServiceUnavailable)
}

// addMember serves raftexample's POST /<id> with the peer URL as body.
func (h *apiHandler) addMember(w http.ResponseWriter, r *http.Request, idText string) {
	id, ok := apiParseMemberID(w, idText)
	if !ok {
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	peerURL := strings.TrimSpace(string(body))
	if err := apiCheckPeerURL(peerURL); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := h.askKV(messages.AddMember{ID: id, PeerURL: peerURL}); err != nil {
		h.fail(w, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeMember serves raftexample's DELETE /<id>.
func (h *apiHandler) removeMember(w http.ResponseWriter, r *http.Request, idText string) {
	id, ok := apiParseMemberID(w, idText)
	if !ok {
		return
	}
	if _, err := h.askKV(messages.RemoveMember{ID: id}); err != nil {
		h.fail(w, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiParseMemberID accepts the forms raftexample accepts (base prefix
// allowed), but refuses 0, which raft reserves for "none".
func apiParseMemberID(w http.ResponseWriter, s string) (uint64, bool) {
	id, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		http.Error(w, fmt.Sprintf("member id %q is not an unsigned integer", s), http.StatusBadRequest)
		return 0, false
	}
	if id == 0 {
		http.Error(w, "member id must not be 0", http.StatusBadRequest)
		return 0, false
	}
	return id, true
}

// apiCheckPeerURL refuses URLs the transport could never dial, before they
// are committed to the cluster's membership for good.
func apiCheckPeerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid peer URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("peer URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("peer URL %q has no host", s)
	}
	return nil
}
