package httpapi

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
)

// Headers of GET /v1/snapshot: what the backup holds.
const (
	hdrSnapshotRevision = "X-Raftkv-Revision"
	hdrSnapshotIndex    = "X-Raftkv-Index"
	hdrSnapshotKeys     = "X-Raftkv-Keys"
	snapshotPath        = "/v1/snapshot"
)

// serveSnapshot streams a backup of this member's db: the db as of its
// last commit, from a read transaction (writers go on meanwhile), then its
// SHA-256 (package backup's format, etcd's). What it holds is in the
// headers; Content-Length is the db and the checksum. A stream that fails
// part way ends short, and the client's check of the checksum refuses it.
func (h *handler) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		refuseMethod(w, r, getOnly)
		return
	}
	if !h.noParams(w, r) {
		return
	}
	if h.backups == nil {
		refuse(w, r, http.StatusServiceUnavailable, "this member serves no backups")
		return
	}
	rc, size, info, err := h.actors().Backup(r.Context(), h.backups)
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size+sha256.Size, 10))
	w.Header().Set(hdrSnapshotRevision, strconv.FormatUint(info.Revision, 10))
	w.Header().Set(hdrSnapshotIndex, strconv.FormatUint(info.Index, 10))
	w.Header().Set(hdrSnapshotKeys, strconv.FormatUint(info.Keys, 10))
	w.WriteHeader(http.StatusOK)
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, sum), rc)
	if err == nil && n != size {
		err = errors.New("the db stream ended early")
	}
	if err != nil {
		h.log.Warn("backup stream cut short", zap.Int64("sent", n), zap.Int64("size", size), redact.Error(err))
		return // the client sees fewer bytes than Content-Length
	}
	_, _ = w.Write(sum.Sum(nil))
}
