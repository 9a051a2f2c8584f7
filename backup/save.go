package backup

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Path of the HTTP API's backup stream, and the header that says which
// revision it holds.
const (
	snapshotPath   = "/v1/snapshot"
	revisionHeader = "X-Raftkv-Revision"
	maxErrorBody   = 4 << 10 // an error answer is one line of JSON
)

// Save takes a backup from the member at endpoint (its client URL) into a
// new file at path (WriteTo), and checks that the file holds the revision
// the member said it sent.
func Save(ctx context.Context, client *http.Client, endpoint, path string) (Info, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+snapshotPath, nil)
	if err != nil {
		return Info{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Info{}, fmt.Errorf("ask %s for a backup: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return Info{}, fmt.Errorf("%s answered %s: %s", endpoint, resp.Status, strings.TrimSpace(string(b)))
	}
	info, err := WriteTo(resp.Body, path)
	if err != nil {
		return Info{}, err
	}
	if rev, err := strconv.ParseUint(resp.Header.Get(revisionHeader), 10, 64); err == nil && rev != info.Revision {
		return Info{}, fmt.Errorf("%w: %s said it sent revision %d, the file holds %d", ErrCorrupt, endpoint, rev, info.Revision)
	}
	return info, nil
}
