// Command node runs one member of a replicated key-value cluster.
//
// With no flags it starts a one-member cluster: peer URL
// http://127.0.0.1:12379, client API on 127.0.0.1:12380, data in ./node-1.
// Flags --id, --cluster, --port and --join mean what they mean for etcd's
// raftexample: member ids are 1..N in --cluster order, and the member
// serves the peer protocol (etcd rafthttp's) on its own --cluster URL.
// Where to listen, TLS and the cluster's identity take etcd's flag names
// (--listen-client-urls, --cert-file, --peer-client-cert-auth,
// --initial-cluster-token, ...). With --format raftexample it can join a
// cluster of raftexample nodes.
//
// `node snapshot save` takes a backup of a member's db into a file, and
// `node snapshot status` checks one (package backup).
//
// Exit status: 0 after SIGINT/SIGTERM or removal from the cluster; 1 when
// the member could not start (its data dir belongs to another cluster or
// process, a port is taken, ...) or stopped on a fatal error (such as a
// failed WAL write); 2 for bad flags. Refusals to start are one line on
// stderr; so are bad flags, with nothing created on disk.
package main

import (
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "snapshot" {
		os.Exit(runSnapshot(os.Args[2:], os.Stdout, os.Stderr))
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, errHelp) {
		usage(os.Stdout)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(2)
	}
	lg, err := newLogger(o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
	code := run(o, lg)
	_ = lg.Sync()
	os.Exit(code)
}

// newLogger writes JSON lines to stderr. No stack traces: an error here is
// an operator's to read, and says what it is.
func newLogger(level zapcore.Level) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.Sampling = nil
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	lg, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("logger: %w", err)
	}
	return lg, nil
}
