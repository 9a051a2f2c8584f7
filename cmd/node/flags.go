package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap/zapcore"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/reqid"
	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/tlsfiles"
)

// options is the validated command line. Everything in it was checked
// before anything touched the disk or the network: a bad flag exits 2 with
// nothing created.
type options struct {
	id        uint64
	peers     map[uint64]string // --cluster: id → peer URL (membership.ParseCluster)
	join      bool
	force     bool // --force-new-cluster
	dataDir   string
	format    apply.Format
	clusterID uint64 // --cluster-id; 0 when not given
	token     string

	listenClient    []*url.URL
	advertiseClient []string
	listenPeer      []*url.URL
	listenMetrics   []*url.URL // --listen-metrics-urls; none when not given
	clientTLS       tlsfiles.Files
	peerTLS         tlsfiles.Files

	snapshotCount   uint64
	catchUpEntries  uint64
	quota           uint64
	maxRequestBytes int64
	logLevel        zapcore.Level
	pprof           bool
}

// defaultQuota is etcd's default --quota-backend-bytes: 2 GiB. A cluster
// that outgrows it should be told so (507) rather than fill its disks.
const defaultQuota = 2 << 30

// errHelp is returned for --help: usage goes to stdout and the exit is 0.
var errHelp = flag.ErrHelp

// newFlagSet declares the flags into raw. Its usage is printed only for
// --help: a mistake gets one line, not a page.
func newFlagSet(raw *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Uint64Var(&raw.id, "id", 1, "this member's id: its 1-based position in --cluster, or its id=URL entry")
	fs.StringVar(&raw.cluster, "cluster", "http://127.0.0.1:12379", "comma-separated peer URLs of the cluster's members, in id order (ids 1..N), or as id=URL")
	fs.IntVar(&raw.port, "port", 12380, "client port on 127.0.0.1; short for --listen-client-urls http://127.0.0.1:<port>")
	fs.BoolVar(&raw.join, "join", false, "join a running cluster that this member was added to (POST /v1/members/<id>)")
	fs.BoolVar(&raw.force, "force-new-cluster", false, "restart this member as the only voter of its cluster, keeping its data, after the cluster lost its majority for good; remove the flag once it runs")
	fs.StringVar(&raw.dataDir, "data-dir", "", "data directory (default ./node-<id>)")
	fs.StringVar(&raw.format, "format", "native", "state machine format: native, or raftexample to join a cluster of etcd raftexample nodes")
	fs.StringVar(&raw.clusterID, "cluster-id", "", "cluster id in hex (default: derived from --cluster and --initial-cluster-token; 1000 for --format raftexample)")
	fs.StringVar(&raw.token, "initial-cluster-token", "", "a name for a new cluster, so that two clusters on the same peer URLs get different ids")
	fs.StringVar(&raw.listenClient, "listen-client-urls", "", "comma-separated http:// or https:// URLs to serve clients on (default http://127.0.0.1:<--port>; 0.0.0.0 serves every interface)")
	fs.StringVar(&raw.advertiseClient, "advertise-client-urls", "", "comma-separated client URLs to tell the cluster (default: --listen-client-urls)")
	fs.StringVar(&raw.listenPeerURLs, "listen-peer-urls", "", "comma-separated URLs to serve peers on (default: this member's --cluster URL)")
	fs.StringVar(&raw.listenMetrics, "listen-metrics-urls", "", "comma-separated http:// URLs to serve /metrics, /livez, /readyz and /healthz on, without TLS (default: none; the client URLs serve them too)")
	fs.StringVar(&raw.listenPeer, "listen-peer", "", "host:port to serve peers on, with the scheme of this member's --cluster URL (an older form of --listen-peer-urls)")
	fs.StringVar(&raw.clientTLS.CertFile, "cert-file", "", "client TLS: this member's certificate (PEM)")
	fs.StringVar(&raw.clientTLS.KeyFile, "key-file", "", "client TLS: its private key (PEM)")
	fs.StringVar(&raw.clientTLS.TrustedCAFile, "trusted-ca-file", "", "client TLS: CAs that sign client certificates (PEM)")
	fs.BoolVar(&raw.clientTLS.ClientCertAuth, "client-cert-auth", false, "client TLS: require a client certificate signed by --trusted-ca-file")
	fs.StringVar(&raw.peerTLS.CertFile, "peer-cert-file", "", "peer TLS: this member's certificate, served and presented to peers (PEM)")
	fs.StringVar(&raw.peerTLS.KeyFile, "peer-key-file", "", "peer TLS: its private key (PEM)")
	fs.StringVar(&raw.peerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "peer TLS: CAs that sign the peers' certificates (PEM)")
	fs.BoolVar(&raw.peerTLS.ClientCertAuth, "peer-client-cert-auth", false, "peer TLS: require peers to present a certificate signed by --peer-trusted-ca-file")
	fs.StringVar(&raw.peerTLS.AllowedCN, "peer-cert-allowed-cn", "", "peer TLS: accept only peer certificates with this common name")
	fs.Uint64Var(&raw.snapshotCount, "snapshot-count", actors.DefaultSnapshotCount, "applied entries between snapshots")
	fs.Uint64Var(&raw.catchUpEntries, "catch-up-entries", actors.DefaultCatchUpEntries, "entries kept in the log behind a snapshot, for followers that lag")
	fs.Uint64Var(&raw.quota, "quota-backend-bytes", defaultQuota, "bytes the keys and values may take (each with 32 bytes of overhead); a write past it is refused with 507; 0 means no quota")
	fs.Int64Var(&raw.maxRequestBytes, "max-request-bytes", 1572864, "largest client request body accepted, in bytes")
	fs.StringVar(&raw.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&raw.pprof, "enable-pprof", false, "serve Go's profiler at /debug/pprof/ on the client URLs")
	fs.BoolVar(&raw.version, "version", false, "print the version, its git revision, Go version and data format, and exit (so does: node version)")
	return fs
}

// rawFlags is the command line as typed.
type rawFlags struct {
	id                                   uint64
	cluster, dataDir, format, clusterID  string
	token, listenClient, advertiseClient string
	listenPeerURLs, listenPeer, logLevel string
	port                                 int
	join, force, pprof                   bool
	clientTLS, peerTLS                   tlsfiles.Files
	snapshotCount, catchUpEntries, quota uint64
	maxRequestBytes                      int64
	listenMetrics                        string
	set                                  map[string]bool // flags given on the command line or in the environment
	version                              bool            // --version: print it and exit
}

// usage writes the flags' help, spelled with two dashes as everywhere else.
func usage(w io.Writer) {
	var raw rawFlags
	fs := newFlagSet(&raw)
	fmt.Fprintln(w, "Usage: node [flags]\n\nRuns one member of a replicated key-value cluster. Flags:")
	fs.VisitAll(func(f *flag.Flag) {
		typ, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			help += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, help)
	})
	fmt.Fprintf(w, "\nEvery flag but --version can be set in the environment instead, as %s<FLAG> in upper case\n"+
		"with underscores for dashes: %sLISTEN_CLIENT_URLS for --listen-client-urls. A flag on the\n"+
		"command line wins over its variable, an empty variable sets nothing, and a %s variable\n"+
		"that names no flag is refused as an unknown flag is.\n", envPrefix, envPrefix, envPrefix)
}

// errVersion is returned for --version: the version goes to stdout and
// the exit is 0.
var errVersion = errors.New("version asked for")

// parseFlags parses and checks the command line and then the flags that
// environ (os.Environ's form, KEY=value) sets (setFromEnv). Its errors are
// one line each and name the flag or the variable.
func parseFlags(args, environ []string) (options, error) {
	var raw rawFlags
	fs := newFlagSet(&raw)
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if raw.version {
		return options{}, errVersion
	}
	raw.set = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { raw.set[f.Name] = true })
	if err := setFromEnv(fs, raw.set, environ); err != nil {
		return options{}, err
	}
	return raw.check()
}

// envPrefix starts the environment variables that set flags, as ETCD_
// does etcd's: RAFTKV_DATA_DIR is --data-dir.
const envPrefix = "RAFTKV_"

// testVars are RAFTKV_ variables that are this repository's tests', not
// flags (RAFTKV_TEST_LOG shows the logs of in-process members,
// RAFTKV_BE_NODE makes cmd/node's test binary the node). A node that a
// test starts inherits the test's environment, and must not refuse them.
var testVars = map[string]bool{"RAFTKV_TEST_LOG": true, "RAFTKV_BE_NODE": true}

// envName is the variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// setFromEnv sets each flag that the command line did not give from its
// variable in environ, and counts it as given (set), so that the checks
// of flags that exclude each other see it. Unlike etcd, which warns of an
// ETCD_ variable it does not know and stops when a flag and its variable
// are both set, it refuses an unknown variable (a misspelt one would
// otherwise leave a default in force unseen) and lets the command line
// win. An empty variable sets nothing, as for etcd: a deployment template
// that renders an unset value as "" leaves the default. --version is
// never taken from the environment: a variable RAFTKV_VERSION set for
// other uses would turn every start into a print.
func setFromEnv(fs *flag.FlagSet, set map[string]bool, environ []string) error {
	byVar := make(map[string]*flag.Flag)
	fs.VisitAll(func(f *flag.Flag) { byVar[envName(f.Name)] = f })
	onCommandLine := maps.Clone(set)
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || testVars[name] {
			continue
		}
		f, ok := byVar[name]
		switch {
		case !ok:
			return fmt.Errorf("environment variable %s names no flag (see node --help)", name)
		case f.Name == "version":
			return fmt.Errorf("environment variable %s: --version is taken from the command line only", name)
		case onCommandLine[f.Name] || val == "":
			continue
		}
		if err := fs.Set(f.Name, val); err != nil {
			return fmt.Errorf("invalid value %q for environment variable %s (--%s): %w", val, name, f.Name, err)
		}
		set[f.Name] = true
	}
	return nil
}

func (raw *rawFlags) check() (options, error) {
	o := options{
		id:              raw.id,
		join:            raw.join,
		force:           raw.force,
		dataDir:         raw.dataDir,
		token:           raw.token,
		clientTLS:       raw.clientTLS,
		peerTLS:         raw.peerTLS,
		snapshotCount:   raw.snapshotCount,
		catchUpEntries:  raw.catchUpEntries,
		quota:           raw.quota,
		maxRequestBytes: raw.maxRequestBytes,
		pprof:           raw.pprof,
	}
	var err error
	if o.logLevel, err = zapcore.ParseLevel(raw.logLevel); err != nil {
		return o, fmt.Errorf("--log-level %q: want debug, info, warn or error", raw.logLevel)
	}
	if o.format, err = apply.ParseFormat(raw.format); err != nil {
		return o, fmt.Errorf("--format: %w", err)
	}
	if o.peers, err = membership.ParseCluster(raw.cluster, reqid.Shares); err != nil {
		return o, err
	}
	if !membership.ValidID(o.id) {
		return o, fmt.Errorf("--id %d: want a member id from 1 up", o.id)
	}
	self, ok := o.peers[o.id]
	if !ok {
		return o, fmt.Errorf("--id %d is not in --cluster (%d members)", o.id, len(o.peers))
	}
	if o.dataDir == "" {
		o.dataDir = "node-" + strconv.FormatUint(o.id, 10)
	}
	if err := raw.checkIdentity(&o); err != nil {
		return o, err
	}
	if err := raw.checkClientURLs(&o); err != nil {
		return o, err
	}
	if err := raw.checkPeerURLs(&o, self); err != nil {
		return o, err
	}
	if err := raw.checkMetricsURLs(&o); err != nil {
		return o, err
	}
	if err := checkTLS(o); err != nil {
		return o, err
	}
	if o.force && o.join {
		return o, errors.New("--force-new-cluster and --join exclude each other: a forced member keeps its own data and joins nothing")
	}
	if o.snapshotCount == 0 {
		return o, errors.New("--snapshot-count must be positive")
	}
	if o.maxRequestBytes <= 0 {
		return o, errors.New("--max-request-bytes must be positive")
	}
	return o, nil
}

func (raw *rawFlags) checkIdentity(o *options) error {
	if raw.clusterID != "" {
		id, err := membership.ParseClusterID(raw.clusterID)
		if err != nil {
			return err
		}
		if raw.set["initial-cluster-token"] {
			return errors.New("--cluster-id and --initial-cluster-token exclude each other: the token only serves to derive an id")
		}
		o.clusterID = id
	}
	if o.format == apply.FormatRaftexample && raw.set["initial-cluster-token"] {
		return errors.New("--initial-cluster-token does not apply to --format raftexample, whose cluster id is fixed (--cluster-id)")
	}
	return nil
}

func (raw *rawFlags) checkClientURLs(o *options) error {
	if raw.set["port"] && raw.set["listen-client-urls"] {
		return errors.New("--port and --listen-client-urls exclude each other: --port is short for --listen-client-urls http://127.0.0.1:<port>")
	}
	if raw.port < 1 || raw.port > 65535 {
		return fmt.Errorf("--port %d: want a port from 1 to 65535", raw.port)
	}
	listen := raw.listenClient
	if listen == "" {
		listen = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(raw.port))
	}
	var err error
	if o.listenClient, err = parseURLs("--listen-client-urls", listen, true); err != nil {
		return err
	}
	if raw.advertiseClient == "" {
		for _, u := range o.listenClient {
			if unspecified(u.Hostname()) {
				return fmt.Errorf("--listen-client-urls %s serves every interface: give --advertise-client-urls, the URLs clients on other hosts can reach", u)
			}
			o.advertiseClient = append(o.advertiseClient, u.String())
		}
		return nil
	}
	adv, err := parseURLs("--advertise-client-urls", raw.advertiseClient, false)
	if err != nil {
		return err
	}
	for _, u := range adv {
		if unspecified(u.Hostname()) {
			return fmt.Errorf("--advertise-client-urls %s: a client cannot dial 0.0.0.0; give an address of this host", u)
		}
		o.advertiseClient = append(o.advertiseClient, u.String())
	}
	return nil
}

func (raw *rawFlags) checkPeerURLs(o *options, self string) error {
	selfURL, _ := url.Parse(self) // checked by membership.ParseCluster
	switch {
	case raw.listenPeer != "" && raw.listenPeerURLs != "":
		return errors.New("--listen-peer and --listen-peer-urls exclude each other: --listen-peer is the older form")
	case raw.listenPeer != "":
		if _, _, err := net.SplitHostPort(raw.listenPeer); err != nil {
			return fmt.Errorf("--listen-peer %q: want host:port", raw.listenPeer)
		}
		u, err := parseURLs("--listen-peer", selfURL.Scheme+"://"+raw.listenPeer, true)
		if err != nil {
			return err
		}
		o.listenPeer = u
	case raw.listenPeerURLs != "":
		u, err := parseURLs("--listen-peer-urls", raw.listenPeerURLs, true)
		if err != nil {
			return err
		}
		o.listenPeer = u
	default:
		o.listenPeer = []*url.URL{selfURL}
	}
	for _, u := range o.listenPeer {
		if u.Scheme != selfURL.Scheme {
			return fmt.Errorf("--listen-peer-urls %s serves %s, but this member's peer URL in --cluster is %s: peers would dial it with the wrong protocol", u, u.Scheme, self)
		}
	}
	return nil
}

// checkMetricsURLs reads --listen-metrics-urls. https:// is refused: the
// listener exists so that Prometheus and probes need no certificate, and
// an https:// one would need the client API's certificates and the choice
// of whether to ask for a client's, which the client URLs already serve;
// bind it to an interface only they reach. The host:port of a client or
// peer URL is refused now rather than found taken at start.
func (raw *rawFlags) checkMetricsURLs(o *options) error {
	if raw.listenMetrics == "" {
		return nil
	}
	us, err := parseURLs("--listen-metrics-urls", raw.listenMetrics, true)
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Scheme != "http" {
			return fmt.Errorf("--listen-metrics-urls %s: only http:// is served there (no TLS, so that probes and Prometheus need no certificate); the client URLs serve the same over TLS", u)
		}
		for _, other := range append(slices.Clone(o.listenClient), o.listenPeer...) {
			if other.Host == u.Host {
				return fmt.Errorf("--listen-metrics-urls %s: %s is also where %s listens; give the metrics a port of their own", u, u.Host, other)
			}
		}
	}
	o.listenMetrics = us
	return nil
}

// checkTLS refuses an https:// URL without its certificate (it would be
// served in plaintext otherwise) and TLS flags with no https:// URL to use
// them (an operator would believe TLS is on). It reads the files once, so
// a missing or mismatched one is a flag error, not a failure at the first
// connection.
func checkTLS(o options) error {
	clientHTTPS := anyHTTPS(o.listenClient)
	switch {
	case clientHTTPS && (o.clientTLS.CertFile == "" || o.clientTLS.KeyFile == ""):
		return fmt.Errorf("--listen-client-urls has https:// URLs: %s", missingPair("--cert-file", "--key-file", o.clientTLS))
	case !clientHTTPS && !o.clientTLS.Empty():
		return errors.New("client TLS flags (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth) are set, but no --listen-client-urls is https://")
	case clientHTTPS:
		if _, err := tlsfiles.ServerConfig(o.clientTLS, nil); err != nil {
			return fmt.Errorf("client TLS (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth): %w", err)
		}
	}
	peerHTTPS := anyHTTPS(o.listenPeer)
	pt := o.peerTLS
	switch {
	case peerHTTPS && (pt.CertFile == "" || pt.KeyFile == ""):
		return fmt.Errorf("this member's peer URL is https://: %s", missingPair("--peer-cert-file", "--peer-key-file", pt))
	case !peerHTTPS && (pt.ClientCertAuth || pt.AllowedCN != ""):
		return errors.New("--peer-client-cert-auth and --peer-cert-allowed-cn need this member's peer URL to be https://")
	case peerHTTPS:
		if _, err := tlsfiles.ServerConfig(pt, nil); err != nil {
			return fmt.Errorf("peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth): %w", err)
		}
	}
	if _, err := tlsfiles.NewClient(pt, nil); err != nil {
		return fmt.Errorf("peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file): %w", err)
	}
	return nil
}

// missingPair names the flags of a certificate pair that are missing.
func missingPair(certFlag, keyFlag string, f tlsfiles.Files) string {
	switch {
	case f.CertFile == "" && f.KeyFile == "":
		return certFlag + " and " + keyFlag + " are required"
	case f.CertFile == "":
		return certFlag + " is required"
	default:
		return keyFlag + " is required"
	}
}

// parseURLs reads a comma-separated list of URLs to listen on (listen)
// or to publish, each as membership checks and writes it (a listen URL may
// leave the host out: every interface), refusing one given twice.
func parseURLs(flagName, list string, listen bool) ([]*url.URL, error) {
	parse := membership.ParseURL
	if listen {
		parse = membership.ParseListenURL
	}
	var out []*url.URL
	seen := make(map[string]bool)
	for s := range strings.SplitSeq(list, ",") {
		u, err := parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("%s: %s is given twice", flagName, u)
		}
		seen[u.String()] = true
		out = append(out, u)
	}
	return out, nil
}

func anyHTTPS(us []*url.URL) bool {
	for _, u := range us {
		if u.Scheme == "https" {
			return true
		}
	}
	return false
}

// unspecified reports whether host means "every interface".
func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}
