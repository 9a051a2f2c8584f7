package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/raftkv/node/tlsfiles"
)

// newTransport returns the one transport all clients share, whose dialers
// the watchers use too. Connections are kept for reuse, uncapped, so that
// after warm-up a request costs no dial; its timeouts bound the dial (TLS
// handshake included) and the wait for the answer's header without a timer
// and a context per request. tc makes the https connections when not nil.
func newTransport(clients int, timeout time.Duration, tc *tlsfiles.Client) *http.Transport {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // a benchmark measures the endpoints, not a proxy
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   clients + 4, // leader discovery and the apply wait take a few
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true, // the answers are a few bytes; no gzip reader per body
		DialTLSContext: (&tls.Dialer{NetDialer: d,
			Config: &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}).DialContext,
	}
	if tc != nil {
		// A dial function, not a TLSClientConfig: checking a server
		// against --cacert needs the host dialed, which crypto/tls does
		// not pass on when it is an IP address.
		tr.DialTLSContext = tc.DialTLSContext(d)
	}
	return tr
}

// nodeStatus is the part of a node's GET /v1/status answer the benchmark
// uses. Ids are the node's own; only --endpoints ties them to client URLs.
type nodeStatus struct {
	ID      uint64 `json:"id"`
	Leader  uint64 `json:"leader"`
	Term    uint64 `json:"term"`
	Applied uint64 `json:"applied_index"`
}

func fetchStatus(ctx context.Context, hc *http.Client, endpoint string) (st nodeStatus, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/v1/status", nil)
	var resp *http.Response
	if err == nil {
		resp, err = hc.Do(req)
	}
	if err == nil {
		defer resp.Body.Close()
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		switch {
		case rerr != nil:
			err = fmt.Errorf("reading the answer: %w", rerr)
		case resp.StatusCode != http.StatusOK:
			err = fmt.Errorf("%s: %s", resp.Status, oneLine(body))
		default:
			if uerr := json.Unmarshal(body, &st); uerr != nil {
				err = fmt.Errorf("decoding the answer: %w", uerr)
			}
		}
	}
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", endpoint, err)
	}
	return st, nil
}

// oneLine shortens an error body for a message.
func oneLine(b []byte) string {
	s := []rune(string(b[:min(len(b), 200)]))
	for i, r := range s {
		if r == '\n' || r == '\r' || r == '\t' {
			s[i] = ' '
		}
	}
	if len(b) > 200 {
		return string(s) + "…"
	}
	return string(s)
}

// findLeader returns the endpoint whose node reports itself as the leader
// (its id equals the leader it knows): member ids name peer URLs, not
// client endpoints. Should two claim it, as an old leader cut off from the
// rest can for a while, the one of the higher term is the real one. An
// endpoint that cannot be asked is skipped; its error is kept for the
// report if no leader is found.
func findLeader(ctx context.Context, hc *http.Client, endpoints []string) (string, error) {
	var (
		best     string
		bestTerm uint64
		errs     []error
	)
	for _, ep := range endpoints {
		st, err := fetchStatus(ctx, hc, ep)
		switch {
		case err != nil:
			errs = append(errs, err)
		case st.ID != 0 && st.ID == st.Leader && (best == "" || st.Term > bestTerm):
			best, bestTerm = ep, st.Term
		}
	}
	switch {
	case best != "":
		return best, nil
	case len(errs) > 0:
		return "", fmt.Errorf("%w: %w", errNoLeader, errors.Join(errs...))
	}
	return "", errNoLeader
}

// waitApplied waits until every endpoint has applied index, so that the
// first serializable read on a follower does not miss a preloaded key. It
// gives up after timeout.
func waitApplied(ctx context.Context, hc *http.Client, endpoints []string, index uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, ep := range endpoints {
		for {
			st, err := fetchStatus(ctx, hc, ep)
			if err == nil && st.Applied >= index {
				break
			}
			select {
			case <-ctx.Done():
				if err == nil {
					err = fmt.Errorf("applied index %d", st.Applied)
				}
				return fmt.Errorf("%w: %s did not apply index %d in %s: %w", errPreload, ep, index, timeout, err)
			case <-tick.C:
			}
		}
	}
	return nil
}
