package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// nodeStatus is the part of a node's GET /v1/status answer the benchmark
// uses. Ids are the node's own; only the --endpoints list ties them to
// client URLs.
type nodeStatus struct {
	ID      uint64 `json:"id"`
	Leader  uint64 `json:"leader"`
	Term    uint64 `json:"term"`
	Applied uint64 `json:"applied_index"`
}

// fetchStatus asks one endpoint for its status.
func fetchStatus(ctx context.Context, hc *http.Client, endpoint string) (nodeStatus, error) {
	var st nodeStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/v1/status", nil)
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", endpoint, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, fmt.Errorf("status of %s: reading the answer: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status of %s: %s: %s", endpoint, resp.Status, oneLine(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("status of %s: decoding the answer: %w", endpoint, err)
	}
	return st, nil
}

// oneLine shortens an error body for a message.
func oneLine(b []byte) string {
	const limit = 200
	s := string(b)
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
