package metrics

import "github.com/prometheus/client_golang/prometheus"

// Lease is the lessor's metrics (package kv, lessor.go).
type Lease struct {
	Granted    prometheus.Counter   // grants applied (every member counts the same)
	Revoked    prometheus.Counter   // revocations applied, by a client or by expiry
	Expired    prometheus.Counter   // revocations this member proposed, as leader, for leases past their deadline
	KeepAlives prometheus.Counter   // keep-alives this member answered as leader
	ExpiryLag  prometheus.Histogram // how long past its deadline an expired lease's revocation was proposed
}

func newLease(f factory) Lease {
	return Lease{
		Granted:    f.counter("lease", "granted_total", "Lease grants applied."),
		Revoked:    f.counter("lease", "revoked_total", "Lease revocations applied, asked by a client or proposed for an expired lease; the keys attached went with each."),
		Expired:    f.counter("lease", "expired_total", "Revocations this member proposed, as leader, of leases past their deadline."),
		KeepAlives: f.counter("lease", "keepalives_total", "Keep-alives this member answered as leader (a follower hands them to the leader)."),
		// From 1 ms (the lessor looks every 500 ms) to about a minute (a
		// mass expiry waits for the revocation rate limit).
		ExpiryLag: f.histogram("lease", "expiry_lag_seconds", "How long past its deadline an expired lease's revocation was proposed: the lessor's tick, and the rate limit under a mass expiry.", prometheus.ExponentialBuckets(1e-3, 4, 9)),
	}
}
