// Command bench is a load generator for the node's client HTTP API, in the
// manner of etcd's benchmark tool. It owns nothing in the node: it talks to
// running nodes over HTTP only, and sends no actor messages.
//
//	bench put   [flags]   PUT /v1/kv/<new key> for every request
//	bench get   [flags]   preload --keys keys, then GET /v1/kv/<key> of random ones
//	bench mixed [flags]   preload, then reads (--read-ratio) and overwrites
//	bench cas   [flags]   PUT /v1/kv/<own key> with If-Match: "<last revision>"
//	bench txn   [flags]   POST /v1/txn: --txn-ops puts behind a mod_revision compare
//	bench range [flags]   preload --keys keys, then GET /v1/kv/?prefix=…&limit=…
//	bench watch [flags]   --watchers SSE watches of a prefix while PUTs write under it
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
// The coordination commands (docs/api.md) count as follows.
//
//   - cas preloads one key per client (one per --contention clients), reads
//     each client's ETag once, then PUTs the key with If-Match: "R", R the
//     revision it last saw the key at, a new value each time; R comes from
//     the answer: a 200's "revision", a 412's ETag. A 200 with a revision
//     counts. With one client per key a 412 is an error of its own kind
//     ("412 precondition failed"): nothing else writes the key, so the node
//     lost or misreported a write. With --contention N, N clients share each
//     key and 412s are the expected losses of their race: both 200s and 412s
//     are completed operations, reported apart (written, refused, and the
//     refused share).
//   - txn POSTs /v1/txn with --txn-ops puts of keys of the client's own, and
//     (--compare, the default) one compare: the first key's mod_revision
//     equals the revision of the client's last transaction, read from the
//     answer's "revision" (0 for the first: the keys are new). A 200 with
//     "succeeded":true counts; "succeeded":false is an error of its own kind
//     ("compare failed"), and its failure branch, a get of the first key,
//     tells the client where the key is.
//   - range preloads --keys keys and reads them by their prefix, limit=
//     --range-limit (with --keys-only and --consistency as asked). An answer
//     counts when it holds min(limit, keys) keys (and its count says so);
//     fewer is an error of its own kind ("short range"), more or an answer
//     that is not a range a bad reply. The report adds the keys read per
//     second.
//   - watch opens --watchers SSE streams of GET /v1/watch/<run prefix>?
//     prefix=true, spread over --endpoints whatever --target (which places
//     the writers), and once every stream that opened is established, runs
//     --clients writers that PUT new keys under the prefix, as put does (a
//     write counts when its answer gives its revision). Each writer keeps the
//     time of every acknowledgement with the revision; each watcher, the time
//     it received each event. The report gives the writes as put does, and
//     for the watchers: the delay from acknowledgement to delivery over every
//     watcher × write pair (a delivery that came first counts as 0 and is
//     counted), the acknowledged writes a watcher never delivered (missed; by
//     the time every watcher has the last acknowledged write, or
//     --watch-grace after the writers stop), the streams that ended early (an
//     "end" event, by its reason, or a dropped connection: "dropped"), and
//     anomalies: an event delivered twice, a revision not above the stream's
//     last, an event at a revision other than its write's answer, data that
//     is not an event. A watch that cannot be opened is reported by its
//     error; none opening fails the run. Watchers do not reconnect.
//
// After an answer that leaves the revision it knows uncertain (a 504, a
// failed connection, another status), a cas or txn client reads its key's
// ETag again before its next conditional write, so that a 412 is never the
// echo of its own write that timed out; a failure of that read counts as
// the request's.
//
// The generator is built to cost the node's machine little: one shared
// transport with a pooled connection per client, a value generated once,
// keys appended into a reused buffer, and latencies recorded in a
// per-client log-linear histogram (1/128 relative precision, fixed size)
// merged at the end. Answers that must be checked (cas, txn, range,
// watch's writes) are read into a reused buffer and walked in place,
// without decoding what is not needed. A watcher is one goroutine on a
// connection it dials itself (no transport goroutines), with one
// bufio.Reader for the HTTP framing and one for the event lines; it parses
// only the type and key of each event, and records into a bit per write
// and buffered delays: about 8 KiB plus a bit per write per watcher. The report on stdout gives throughput, errors by kind,
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
