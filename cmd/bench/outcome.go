package main

import (
	"io"
	"net/http"
)

// outcome is how one request ended. Only outcomeOK is an acknowledged
// operation; every other outcome is an error of its own kind.
type outcome uint8

const (
	outcomeOK          outcome = iota // 2xx, with the expected body for reads
	outcomeUnavailable                // 503: no leader, nothing proposed
	outcomeTimeout                    // 504: the node gave up; a write may still land
	outcomeStatus                     // any other status, e.g. 404 for a preloaded key
	outcomeTransport                  // no answer: refused, reset, client-side timeout
	outcomeBadReply                   // 2xx whose body is not the stored value, or not the answer asked for
	outcomeConflict                   // the write's condition did not hold: a 412, a transaction that did not succeed
	outcomeShort                      // a range answer with fewer keys than the range holds
)

// exchange sends req and reads the whole answer, which returns the
// connection to the pool for the next request. wantLen ≥ 0 is the body
// length a read must return; a 2xx with another length is a bad reply.
func exchange(rt http.RoundTripper, req *http.Request, wantLen int) (outcome, int) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return outcomeTransport, 0
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		// A status line without its body was not a complete answer.
		return outcomeTransport, resp.StatusCode
	}
	return classify(resp.StatusCode, n, wantLen), resp.StatusCode
}

func classify(status int, bodyLen int64, wantLen int) outcome {
	switch {
	case status >= 200 && status < 300:
		if wantLen >= 0 && bodyLen != int64(wantLen) {
			return outcomeBadReply
		}
		return outcomeOK
	case status == http.StatusServiceUnavailable:
		return outcomeUnavailable
	case status == http.StatusGatewayTimeout:
		return outcomeTimeout
	default:
		return outcomeStatus
	}
}
