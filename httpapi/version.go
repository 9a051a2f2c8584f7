package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/raftkv/node/etcdapi"
	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/version"
)

// GET /version answers what etcd's /version does, under etcd's names, and
// this node's own versions beside them:
//
//   - etcdserver, etcdcluster, storage: the etcd version this member
//     passes for to etcd's clients, the one Maintenance.Status reports
//     (etcdapi.Version); the same on every member of this repository;
//   - server: this binary's version (package version);
//   - cluster: the lowest server version among the cluster's members, each
//     asked on its peer URL (GET /version there, as etcd's members ask each
//     other), or notDecided while a member does not answer, answers with
//     no version (a release before this route) or two versions cannot be
//     ordered;
//   - data_format: the format of the data dir this binary writes, which a
//     member's db is in once opened (an older one is upgraded then).
//
// The peer port answers the same without cluster (NewPeerVersionHandler):
// a member asked for its version never asks the others in turn.
const (
	versionPath = "/version"
	// PeerVersionPath is where NewPeerVersionHandler is mounted on the
	// peer server.
	PeerVersionPath = versionPath
	// notDecided is etcd's word for a cluster version it cannot tell.
	notDecided = "not_decided"
	// versionAskTimeout bounds the wait for each member's version: peers
	// are on a LAN, and one that takes longer is as good as down (the
	// transport's dial timeout is 1 s too).
	versionAskTimeout = time.Second
	// maxVersionAnswer bounds what is read of a member's answer, a few
	// hundred bytes.
	maxVersionAnswer = 64 << 10
)

// Versions is the answer to GET /version.
type Versions struct {
	EtcdServer  string `json:"etcdserver"`
	EtcdCluster string `json:"etcdcluster"`
	Storage     string `json:"storage"`
	Server      string `json:"server"`
	Cluster     string `json:"cluster,omitempty"` // not on the peer port
	DataFormat  string `json:"data_format"`
}

// ownVersions is this member's answer without the cluster's version.
func ownVersions() Versions {
	return Versions{
		EtcdServer: etcdapi.Version, EtcdCluster: etcdapi.Version, Storage: etcdapi.Version,
		Server: version.Version, DataFormat: version.DataFormat,
	}
}

// NewPeerVersionHandler serves GET /version on the peer port: this
// member's versions, with its cluster id in the header as every peer
// answer carries it (0 for none known).
func NewPeerVersionHandler(clusterID uint64) http.Handler {
	id := strconv.FormatUint(clusterID, 16)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(hdrClusterID, id)
		if r.URL.Path != versionPath {
			notFound(w, r)
			return
		}
		if r.Method != http.MethodGet {
			refuseMethod(w, r, getOnly)
			return
		}
		writeVersions(w, ownVersions())
	})
}

func (h *handler) serveVersion(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		refuseMethod(w, r, getOnly)
		return
	}
	if !h.noParams(w, r) {
		return
	}
	vs := ownVersions()
	vs.Cluster = h.clusterVersion(r.Context())
	writeVersions(w, vs)
}

// writeVersions writes vs as etcd does: JSON with no trailing newline.
func writeVersions(w http.ResponseWriter, vs Versions) {
	b, err := json.Marshal(vs)
	if err != nil {
		http.Error(w, "encode the versions: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// clusterVersion asks every other member for its version and returns the
// lowest, counting this member's own; notDecided when any one is unknown.
func (h *handler) clusterVersion(ctx context.Context) string {
	st, err := h.askStatus()
	if err != nil || len(st.Members) == 0 {
		return notDecided
	}
	versions := []string{version.Version}
	if len(st.Members) > 1 {
		if h.peerClient == nil {
			return notDecided
		}
		ctx, cancel := context.WithTimeout(ctx, versionAskTimeout)
		defer cancel()
		var (
			mu  sync.Mutex
			wg  sync.WaitGroup
			bad bool
		)
		for id, peerURL := range st.Members {
			if id == st.ID {
				continue
			}
			wg.Go(func() {
				v, err := h.askVersion(ctx, peerURL)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					h.log.Debug("a member's version is unknown", zap.Uint64("member", id), redact.Error(err))
					bad = true
					return
				}
				versions = append(versions, v)
			})
		}
		wg.Wait()
		if bad {
			return notDecided
		}
	}
	low, ok := version.Lowest(versions)
	if !ok {
		return notDecided
	}
	return low
}

// askVersion asks the member at peerURL for its server version, checking
// that it is of this cluster: another cluster's member on a URL this
// cluster's member left would not tell this cluster's version.
func (h *handler) askVersion(ctx context.Context, peerURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+PeerVersionPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := h.peerClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVersionAnswer))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("answered %s", resp.Status)
	}
	if want := strconv.FormatUint(h.clusterID, 16); h.clusterID != 0 && resp.Header.Get(hdrClusterID) != want {
		return "", fmt.Errorf("answered for cluster %s, not %s", echo(resp.Header.Get(hdrClusterID)), want)
	}
	var vs Versions
	if err := json.Unmarshal(body, &vs); err != nil {
		return "", fmt.Errorf("version answer: %w", err)
	}
	if vs.Server == "" {
		return "", errors.New("answered no server version")
	}
	return vs.Server, nil
}
