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
// `node snapshot save` takes a backup of a member's db into a file, `node
// snapshot status` checks one, and `node snapshot restore` makes a member
// of a new cluster from one (package backup). --force-new-cluster
// restarts a member whose majority is lost for good as the only voter of
// its cluster (actors/force.go). `node version` and
// `node --version` print the version (package version).
//
// Every flag but --version may be set in the environment instead, as
// RAFTKV_<FLAG> (RAFTKV_LISTEN_CLIENT_URLS is --listen-client-urls), as
// etcd takes ETCD_<FLAG>; the command line wins (flags.go, setFromEnv).
// The snapshot subcommands take their flags from the command line only.
//
// Before anything opens the data dir, a db that a newer version wrote is
// refused, and left as it is; a db of an older format is upgraded in place
// when the member opens it (package store).
//
// Exit status: 0 after SIGINT/SIGTERM or removal from the cluster; 1 when
// the member could not start (its data dir belongs to another cluster or
// process, a port is taken, ...) or stopped on a fatal error (such as a
// failed WAL write); 2 for bad flags or variables. Refusals to start are
// one line on stderr; so are bad flags, with nothing created on disk.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "snapshot" {
		os.Exit(runSnapshot(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "version" {
		if len(os.Args) > 2 {
			fmt.Fprintf(os.Stderr, "node version: unexpected arguments: %q\n", os.Args[2:])
			os.Exit(2)
		}
		fmt.Print(version.String())
		os.Exit(0)
	}
	o, err := parseFlags(os.Args[1:], os.Environ())
	switch {
	case errors.Is(err, errHelp):
		usage(os.Stdout)
		os.Exit(0)
	case errors.Is(err, errVersion):
		fmt.Print(version.String())
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(2)
	}
	if err := checkDataFormat(o.dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
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

// checkDataFormat refuses a data dir whose db a newer version of node
// wrote, before anything opens the dir: its WAL may hold entries this
// binary cannot apply, and its db must be left as it is for the binary
// that can read it. Everything else about the db (none yet, unreadable,
// in use by another process) is for the member's own open to judge.
func checkDataFormat(dataDir string) error {
	path := filepath.Join(dataDir, kv.DBFile)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	if _, err := store.ReadInfo(path); errors.Is(err, store.ErrNewerLayout) {
		return fmt.Errorf("data dir %s: %w (this is node %s): run the version that wrote it, or restore a backup into a new data dir", dataDir, err, version.Version)
	}
	return nil
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
