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

// parseArgs turns the command line (without the program name) into a
// config. Errors wrap errUsage; flag.ErrHelp is returned as it is, after
// the usage was printed to stderr.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return cfg, fmt.Errorf("%w: no command given", errUsage)
	}
	switch c := command(args[0]); c {
	case cmdPut, cmdGet, cmdMixed, cmdCAS, cmdTxn, cmdRange, cmdWatch:
		cfg.command = c
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usageText)
		return cfg, flag.ErrHelp
	default:
		fmt.Fprint(stderr, usageText)
		return cfg, fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}

	fs := flag.NewFlagSet("bench "+string(cfg.command), flag.ContinueOnError)
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
	if cfg.endpoints, err = parseEndpoints(*endpoints); err != nil {
		return cfg, err
	}
	if err := cfg.check(*tgt, consistency, set); err != nil {
		return cfg, err
	}
	if cfg.tls, err = clientTLS(files, cfg.endpoints); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// clientTLS reads the files of --cacert, --cert and --key now rather than
// when the run starts, so that a bad one is a bad command line.
func clientTLS(files tlsfiles.Files, endpoints []string) (*tlsfiles.Client, error) {
	if files.Empty() {
		return nil, nil
	}
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, fmt.Errorf("%w: give --cert and --key together", errUsage)
	}
	if !slices.ContainsFunc(endpoints, func(ep string) bool { return strings.HasPrefix(ep, "https://") }) {
		return nil, fmt.Errorf("%w: --cacert, --cert and --key need an https:// endpoint", errUsage)
	}
	// No logger: parsing has none to give, and all it would tell (a file
	// replaced mid-run that failed to load) has no bearing on the report.
	tc, err := tlsfiles.NewClient(files, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return tc, nil
}

// check validates the flags that parse but may still be wrong, and fills
// the fields derived from them.
func (cfg *config) check(tgt, consistency string, set map[string]bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
	}
	switch t := target(tgt); t {
	case targetSpread, targetLeader:
		cfg.target = t
	default:
		return bad("--target must be spread or leader, not %q", tgt)
	}
	switch consistency {
	case "linearizable":
	case "serializable":
		cfg.serializable = true
	default:
		return bad("--consistency must be linearizable or serializable, not %q", consistency)
	}
	if set["duration"] && set["total"] {
		return bad("give --duration or --total, not both")
	}
	if set["total"] {
		if cfg.total == 0 {
			return bad("--total must be positive")
		}
		cfg.duration = 0
	} else if cfg.duration <= 0 {
		return bad("--duration must be positive")
	}
	switch {
	case cfg.clients < 1:
		return bad("--clients must be at least 1")
	case cfg.valSize < 0:
		return bad("--val-size must not be negative")
	case cfg.keySize < 0:
		return bad("--key-size must not be negative")
	case cfg.timeout <= 0:
		return bad("--timeout must be positive")
	case (cfg.command == cmdGet || cfg.command == cmdMixed || cfg.command == cmdRange) && cfg.keys < 1:
		return bad("--keys must be at least 1")
	case cfg.readRatio < 0 || cfg.readRatio > 1:
		return bad("--read-ratio must be between 0 and 1")
	}
	switch cfg.command {
	case cmdCAS:
		if cfg.contention < 1 {
			return bad("--contention must be at least 1")
		}
		// Clients i·c to i·c+c-1 share key i.
		cfg.keys = (cfg.clients + cfg.contention - 1) / cfg.contention
	case cmdTxn:
		if cfg.txnOps < 1 || cfg.txnOps > maxTxnOps {
			return bad("--txn-ops must be from 1 to %d", maxTxnOps)
		}
	case cmdRange:
		if cfg.rangeLimit < 1 || cfg.rangeLimit > maxRangeLimit {
			return bad("--range-limit must be from 1 to %d", maxRangeLimit)
		}
	case cmdWatch:
		if cfg.watchers < 1 {
			return bad("--watchers must be at least 1")
		}
		if cfg.watchGrace < 0 {
			return bad("--watch-grace must not be negative")
		}
		if err := plainPrefix(cfg.keyPrefix); err != nil {
			return bad("--key-prefix: %v", err)
		}
	}
	return nil
}

// The node's bounds (docs/api.md); a run beyond them would measure its 400s.
const (
	maxTxnOps     = 128
	maxRangeLimit = 10000
)

// plainPrefix refuses a key prefix that the node would escape in the JSON
// of a watch event: the watchers match the keys of events byte for byte,
// without unescaping them.
func plainPrefix(p string) error {
	if !utf8.ValidString(p) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range p {
		if r < 0x20 || r == '"' || r == '\\' || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%q would be escaped in the events' JSON", r)
		}
	}
	return nil
}

// parseEndpoints accepts comma-separated http(s) URLs of a host and
// nothing else, since the API paths are appended to them.
func parseEndpoints(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("%w: endpoint %q: %w", errUsage, part, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("%w: endpoint %q: want http://host:port", errUsage, part)
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --endpoints is empty", errUsage)
	}
	return out, nil
}
