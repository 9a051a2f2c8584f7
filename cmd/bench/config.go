package main

import (
	"time"

	"github.com/raftkv/node/tlsfiles"
)

// command is what the timed phase does.
type command string

const (
	cmdPut   command = "put"
	cmdGet   command = "get"
	cmdMixed command = "mixed"
	cmdCAS   command = "cas"   // compare-and-swap PUTs with If-Match
	cmdTxn   command = "txn"   // POST /v1/txn
	cmdRange command = "range" // GET /v1/kv/?prefix=
	cmdWatch command = "watch" // PUTs of new keys watched over SSE
)

// preloads says whether the command writes its key space before the timed
// phase.
func (c command) preloads() bool {
	return c == cmdGet || c == cmdMixed || c == cmdCAS || c == cmdRange
}

// reads says whether the command's operations are reads (get, range, and
// mixed's share); writes, whether they are writes.
func (c command) reads() bool  { return c == cmdGet || c == cmdMixed || c == cmdRange }
func (c command) writes() bool { return c != cmdGet && c != cmdRange }

// target says which endpoints the clients send to.
type target string

const (
	// targetSpread gives client i endpoint i mod len(endpoints).
	targetSpread target = "spread"
	// targetLeader sends every request to the endpoint that reports itself
	// as the leader when the run starts.
	targetLeader target = "leader"
)

// config is one run, as the command line asked for it.
type config struct {
	command      command
	endpoints    []string // base URLs without a trailing slash
	target       target
	clients      int
	valSize      int
	keySize      int
	duration     time.Duration // zero when total is set
	total        uint64        // requests to issue; zero when duration is set
	keyPrefix    string
	json         bool
	timeout      time.Duration
	serializable bool          // get and mixed reads
	keys         int           // key space of get and mixed
	readRatio    float64       // mixed only
	contention   int           // cas: clients per key; 1 gives every client its own
	txnOps       int           // txn: puts per transaction
	txnCompare   bool          // txn: compare the first key's mod_revision
	rangeLimit   int           // range: limit= of every read
	keysOnly     bool          // range: keys_only=true
	watchers     int           // watch: SSE streams
	watchGrace   time.Duration // watch: how long watchers may lag behind the last write
	runID        string        // keeps this run's keys apart from other runs'
	seed         uint64        // of the clients' key and read/write choices; 0 picks one
	// tls is the material of --cacert, --cert and --key; nil when none
	// is given, and https endpoints are then checked against the
	// system roots, with no client certificate.
	tls *tlsfiles.Client
}
