package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/raftkv/node/tlsfiles"
)

const usageText = `usage: bench put|get|mixed|cas|txn|range|watch [flags]

  put    writes new keys: every PUT creates a key no run has written
  get    preloads --keys keys (not timed), then reads random ones of them
  mixed  preloads --keys keys, then reads (--read-ratio) and overwrites them
  cas    preloads a key per client (per --contention clients), then PUTs it
         with If-Match: "<its last revision>"; counts 200s (and 412s under
         contention, apart)
  txn    POSTs /v1/txn of --txn-ops puts of the client's keys, guarded by a
         compare of the first key's mod_revision; counts succeeded ones
  range  preloads --keys keys, then reads them by prefix, --range-limit per
         answer; counts answers holding min(limit, keys) keys, and keys/s
  watch  opens --watchers SSE watches of a prefix, then PUTs new keys under
         it; reports the writes and the delay from each PUT's answer to its
         event on every watcher, events missed and streams ended early

Run "bench <command> -h" for the flags of a command.
`

type target string

const (
	targetSpread target = "spread" // client i uses endpoint i mod N
	targetLeader target = "leader" // every client uses the leader found at the start
)

// config is one run, as the command line asked for it.
type config struct {
	command                      command
	endpoints                    []string // base URLs without a trailing slash
	target                       target
	clients, valSize, keySize    int
	keys                         int           // the preloaded key space; cas: a key per contention clients
	duration, timeout            time.Duration // duration is zero when total is set
	total                        uint64
	keyPrefix, runID             string // the run id keeps the run's keys apart from other runs'
	json, serializable           bool
	readRatio                    float64          // mixed
	contention                   int              // cas: clients per key
	txnOps, rangeLimit, watchers int              // of txn, range, watch
	txnCompare, keysOnly         bool             // of txn, range
	watchGrace                   time.Duration    // watch: how long watchers may lag behind the last write
	seed                         uint64           // of the clients' random choices; 0 picks one
	tls                          *tlsfiles.Client // nil: https checked against the system's roots, no client certificate
	leases                       int              // put: leases held during the run (lease.go)
	leaseTTL                     time.Duration    // put: their TTL
	leasesExpire                 bool             // put: let them expire in the timed phase
}

// parseArgs turns the command line (without the program name) into a
// config. Errors wrap errUsage; flag.ErrHelp comes after the usage was
// printed to stderr.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return cfg, fmt.Errorf("%w: no command given", errUsage)
	}
	cfg.command = command(args[0])
	if _, ok := modes[cfg.command]; !ok {
		fmt.Fprint(stderr, usageText)
		switch args[0] {
		case "-h", "-help", "--help", "help":
			return cfg, flag.ErrHelp
		}
		return cfg, fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}

	fs := flag.NewFlagSet("bench "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints := fs.String("endpoints", "http://127.0.0.1:12380", "comma-separated client URLs of the nodes")
	tgt := fs.String("target", string(targetSpread), "spread: client i uses endpoint i mod N; leader: all to the endpoint that reports itself leader")
	fs.IntVar(&cfg.clients, "clients", 64, "concurrent clients, each with one request in flight")
	fs.IntVar(&cfg.valSize, "val-size", 100, "bytes per value")
	fs.IntVar(&cfg.keySize, "key-size", 16, "minimum key length; keys are zero-padded up to it, never cut")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long the timed phase runs (excludes --total)")
	fs.Uint64Var(&cfg.total, "total", 0, "requests to issue instead of running for --duration")
	fs.StringVar(&cfg.keyPrefix, "key-prefix", "bench-", "prefix of every key, before the run id")
	fs.BoolVar(&cfg.json, "json", false, "print the report as one JSON object")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "per-request timeout for the dial (TLS handshake included) and the answer's header")
	var files tlsfiles.Files
	fs.StringVar(&files.TrustedCAFile, "cacert", "", "PEM file of the CAs that sign the servers' certificates (default: the system's)")
	fs.StringVar(&files.CertFile, "cert", "", "PEM file of a client certificate, for servers that require one (with --key)")
	fs.StringVar(&files.KeyFile, "key", "", "PEM file of the client certificate's private key (with --cert)")
	consistency := "linearizable"
	switch cfg.command {
	case cmdGet, cmdMixed, cmdRange:
		fs.StringVar(&consistency, "consistency", consistency, "linearizable or serializable reads")
		fs.IntVar(&cfg.keys, "keys", 1000, "keys to preload with PUT before the timed phase")
	}
	switch cfg.command {
	case cmdPut:
		fs.IntVar(&cfg.leases, "leases", 0, "leases granted before the timed phase, a key on each, kept alive every TTL/3")
		fs.DurationVar(&cfg.leaseTTL, "lease-ttl", 10*time.Second, "TTL of the --leases, whole seconds")
		fs.BoolVar(&cfg.leasesExpire, "leases-expire", false, "keep the --leases alive no more once the timed phase starts")
	case cmdMixed:
		fs.Float64Var(&cfg.readRatio, "read-ratio", 0.9, "fraction of requests that are reads")
	case cmdCAS:
		fs.IntVar(&cfg.contention, "contention", 1, "clients sharing each key; above 1, 412s are expected and counted apart")
	case cmdTxn:
		fs.IntVar(&cfg.txnOps, "txn-ops", 2, "puts per transaction, of distinct keys of the client (1 to 128)")
		fs.BoolVar(&cfg.txnCompare, "compare", true, "guard each transaction by the mod_revision of its first key")
	case cmdRange:
		fs.IntVar(&cfg.rangeLimit, "range-limit", 100, "limit= of each range read (1 to 10000)")
		fs.BoolVar(&cfg.keysOnly, "keys-only", false, "read keys without their values (keys_only=true)")
	case cmdWatch:
		fs.IntVar(&cfg.watchers, "watchers", 100, "SSE watch streams of the writes' prefix, spread over --endpoints")
		fs.DurationVar(&cfg.watchGrace, "watch-grace", 5*time.Second, "how long after the last write the watchers may take to deliver it")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if cfg.endpoints, err = parseEndpoints(*endpoints); err == nil {
		if err = cfg.check(*tgt, consistency, set); err == nil {
			cfg.tls, err = clientTLS(files, cfg.endpoints)
		}
	}
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}

// check validates the flags that parse but may still be wrong, and fills
// the fields derived from them.
func (cfg *config) check(tgt, consistency string, set map[string]bool) error {
	cfg.target, cfg.serializable = target(tgt), consistency == "serializable"
	for _, c := range []struct {
		bad bool
		msg string
	}{
		{cfg.target != targetSpread && cfg.target != targetLeader, fmt.Sprintf("--target must be spread or leader, not %q", tgt)},
		{consistency != "linearizable" && !cfg.serializable, fmt.Sprintf("--consistency must be linearizable or serializable, not %q", consistency)},
		{set["duration"] && set["total"], "give --duration or --total, not both"},
		{set["total"] && cfg.total == 0, "--total must be positive"},
		{!set["total"] && cfg.duration <= 0, "--duration must be positive"},
		{cfg.clients < 1, "--clients must be at least 1"},
		{cfg.valSize < 0, "--val-size must not be negative"},
		{cfg.keySize < 0, "--key-size must not be negative"},
		{cfg.timeout <= 0, "--timeout must be positive"},
		{set["keys"] && cfg.keys < 1, "--keys must be at least 1"},
		{cfg.readRatio < 0 || cfg.readRatio > 1, "--read-ratio must be between 0 and 1"},
		{cfg.command == cmdCAS && cfg.contention < 1, "--contention must be at least 1"},
		// The node's bounds (docs/api.md): a run beyond them would measure its 400s.
		{cfg.command == cmdTxn && (cfg.txnOps < 1 || cfg.txnOps > 128), "--txn-ops must be from 1 to 128"},
		{cfg.command == cmdRange && (cfg.rangeLimit < 1 || cfg.rangeLimit > 10000), "--range-limit must be from 1 to 10000"},
		{cfg.command == cmdWatch && cfg.watchers < 1, "--watchers must be at least 1"},
		{cfg.watchGrace < 0, "--watch-grace must not be negative"},
		{cfg.leases < 0, "--leases must not be negative"},
		{set["lease-ttl"] && (cfg.leaseTTL < time.Second || cfg.leaseTTL%time.Second != 0), "--lease-ttl must be whole seconds, at least 1s"},
		{cfg.leasesExpire && (cfg.leases == 0 || set["total"] || cfg.duration <= cfg.leaseTTL), "--leases-expire needs --leases and a --duration longer than --lease-ttl"},
		// The watchers match the keys of events byte for byte, without
		// unescaping them: the prefix must be one the node does not escape.
		{cfg.command == cmdWatch && !utf8.ValidString(cfg.keyPrefix), "--key-prefix: not valid UTF-8"},
	} {
		if c.bad {
			return errors.New(c.msg)
		}
	}
	for _, r := range cfg.keyPrefix {
		if cfg.command == cmdWatch && (r < 0x20 || r == '"' || r == '\\' || r == '\u2028' || r == '\u2029') {
			return fmt.Errorf("--key-prefix: %q would be escaped in the events' JSON", r)
		}
	}
	if set["total"] {
		cfg.duration = 0
	}
	if cfg.command == cmdCAS { // clients i·c to i·c+c-1 share key i
		cfg.keys = (cfg.clients + cfg.contention - 1) / cfg.contention
	}
	return nil
}

// clientTLS reads the files of --cacert, --cert and --key now rather than
// when the run starts, so that a bad one is a bad command line.
func clientTLS(files tlsfiles.Files, endpoints []string) (*tlsfiles.Client, error) {
	switch {
	case files.Empty():
		return nil, nil
	case (files.CertFile == "") != (files.KeyFile == ""):
		return nil, errors.New("give --cert and --key together")
	case !slices.ContainsFunc(endpoints, func(ep string) bool { return strings.HasPrefix(ep, "https://") }):
		return nil, errors.New("--cacert, --cert and --key need an https:// endpoint")
	}
	return tlsfiles.NewClient(files, nil) // no logger: a file replaced mid-run does not bear on the report
}

// parseEndpoints accepts comma-separated http(s) URLs of a host and
// nothing else, since the API paths are appended to them.
func parseEndpoints(s string) (out []string, err error) {
	for part := range strings.SplitSeq(s, ",") {
		var u *url.URL
		if part = strings.TrimSpace(part); part == "" {
			continue
		} else if u, err = url.Parse(part); err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", part, err)
		} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("endpoint %q: want http://host:port", part)
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	if len(out) == 0 {
		return nil, errors.New("--endpoints is empty")
	}
	return out, nil
}
