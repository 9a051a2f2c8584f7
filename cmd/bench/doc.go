// Command bench is a load generator for the node's client HTTP API, in the
// manner of etcd's benchmark tool. It owns nothing in the node: it talks to
// running nodes over HTTP only, and sends no actor messages.
//
//	bench put   [flags]   PUT /v1/kv/<new key> for every request
//	bench get   [flags]   preload --keys keys, then GET /v1/kv/<key> of random ones
//	bench mixed [flags]   preload, then reads (--read-ratio) and overwrites
//
// Each of --clients clients keeps one request in flight, to endpoint i mod N
// of --endpoints (--target spread) or to the endpoint whose node reports
// itself the leader in GET /v1/status (--target leader). The timed phase
// runs for --duration or until --total requests are issued.
//
// https:// endpoints are checked against the system's CAs, or against
// those of --cacert, as etcd's benchmark names it; --cert and --key give
// the client certificate that a node started with --client-cert-auth
// requires. The files are read before the run, so a missing or
// mismatched one is a bad command line, as is giving --cert without --key
// or these flags without an https:// endpoint. With --cacert, the
// certificate must name the endpoint's host as dialed, IP addresses
// included.
//
// Counting is strict: an operation counts only when the node answered 2xx,
// which for a PUT on /v1/kv means committed and applied, and for a read
// also that the body is the value written. 503 (no leader), 504 (timed out;
// a write may still be applied), any other status (a 404 for a preloaded
// key among them), a wrong body and a failed connection are errors of
// their own kinds, never operations, and their latency is not recorded.
//
// The generator is built to cost the node's machine little: one shared
// transport with a pooled connection per client, a value generated once,
// keys appended into a reused buffer, and latencies recorded in a
// per-client log-linear histogram (1/128 relative precision, fixed size)
// merged at the end. The report on stdout gives throughput, errors by kind,
// latency min/mean/p50/p90/p99/p99.9/max and a histogram; --json prints the
// same numbers as one JSON object, latencies in microseconds. A progress
// bar is drawn on stderr when it is a terminal.
//
// On a machine shared with the nodes, GOMAXPROCS=1 keeps the generator to
// one core; at one client it also halves its latency and CPU per request,
// since the transport's goroutines then hand off without waking threads.
//
// Exit status: 0 when the run completed, even with errors; 1 when it could
// not run or nothing was acknowledged; 2 for a bad command line.
package main
