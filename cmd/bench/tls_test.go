package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/tlsfiles"
	"go.uber.org/zap"
)

// TestRunMainTLS runs the bench against a node that serves https and
// requires a client certificate from its CA: every request succeeds with
// --cacert, --cert and --key, none without --cert, and none without
// --cacert, since the system roots do not hold the node's CA.
func TestRunMainTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "cluster-ca")
	srvCert, srvKey := ca.Issue(t, "node-1")
	srvCfg, err := tlsfiles.ServerConfig(tlsfiles.Files{
		CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: ca.CertFile(), ClientCertAuth: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	node := newTLSFakeNode(t, nil, srvCfg)
	cert, key := ca.Issue(t, "bench")
	tlsFlags := []string{"--cacert", ca.CertFile(), "--cert", cert, "--key", key}

	tests := []struct {
		name   string
		args   []string
		want   int // exit status
		acked  int // PUTs acknowledged by the node after the run
		served int // GETs served by the node after the run
	}{
		{"put", append([]string{"put", "--total", "20", "--clients", "2"}, tlsFlags...), 0, 20, 0},
		// Leader discovery, the preload and the wait for it to be
		// applied go over TLS too.
		{"get from the leader", append([]string{"get", "--total", "10", "--keys", "5", "--target", "leader",
			"--consistency", "serializable"}, tlsFlags...), 0, 25, 10},
		{"no client certificate", []string{"put", "--total", "5", "--cacert", ca.CertFile()}, 1, 25, 10},
		{"no CA", []string{"put", "--total", "5", "--cert", cert, "--key", key}, 1, 25, 10},
		// The watchers dial their own connections, with the same checks.
		{"watch", append([]string{"watch", "--total", "10", "--clients", "2", "--watchers", "3"}, tlsFlags...), 0, 35, 10},
		{"watch without a client certificate", []string{"watch", "--total", "5", "--cacert", ca.CertFile()}, 1, 35, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(slices.Clone(tt.args), "--endpoints", node.url)
			if got := runMain(context.Background(), args, &stdout, &stderr, nil, zap.NewNop()); got != tt.want {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
			if _, acked, _, served := node.counts(); acked != tt.acked || served != tt.served {
				t.Errorf("node acknowledged %d PUTs and served %d GETs, want %d and %d", acked, served, tt.acked, tt.served)
			}
		})
	}
}

// TestParseArgsTLS: the TLS flags give the config its client material,
// and a bad combination or file is a bad command line.
func TestParseArgsTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	cert, key := ca.Issue(t, "bench")
	missing := filepath.Join(t.TempDir(), "absent.pem")
	https := []string{"--endpoints", "https://127.0.0.1:12380"}

	cfg, err := parseArgs(append([]string{"put", "--cacert", ca.CertFile(), "--cert", cert, "--key", key}, https...), io.Discard)
	if err != nil || cfg.tls == nil {
		t.Fatalf("config %+v, error %v; want TLS material", cfg, err)
	}
	if cfg, err := parseArgs(append([]string{"put", "--cacert", ca.CertFile()}, https...), io.Discard); err != nil || cfg.tls == nil {
		t.Fatalf("--cacert alone: config %+v, error %v; want TLS material", cfg, err)
	}
	if cfg, err := parseArgs(append([]string{"put"}, https...), io.Discard); err != nil || cfg.tls != nil {
		t.Fatalf("no TLS flag: config %+v, error %v; want the system's defaults", cfg, err)
	}

	tests := []struct {
		name string
		args []string
		also error // besides errUsage
	}{
		{"cert without key", []string{"--cert", cert}, nil},
		{"key without cert", []string{"--key", key}, nil},
		{"unreadable cacert", []string{"--cacert", missing}, tlsfiles.ErrTrustedCA},
		{"unreadable cert", []string{"--cert", missing, "--key", key}, tlsfiles.ErrKeyPair},
		{"cert and key not a pair", []string{"--cert", cert, "--key", ca.CertFile()}, tlsfiles.ErrKeyPair},
		{"cacert not a CA file", []string{"--cacert", key}, tlsfiles.ErrTrustedCA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"put"}, tt.args...), https...)
			_, err := parseArgs(args, io.Discard)
			if !errors.Is(err, errUsage) || (tt.also != nil && !errors.Is(err, tt.also)) {
				t.Errorf("err = %v, want errUsage and %v", err, tt.also)
			}
			var stderr bytes.Buffer
			if code := runMain(context.Background(), args, io.Discard, &stderr, nil, zap.NewNop()); code != 2 {
				t.Errorf("exit status %d, want 2; stderr: %s", code, stderr.String())
			}
		})
	}
	// TLS flags with only http:// endpoints are a mistake, not a choice.
	if _, err := parseArgs([]string{"put", "--cacert", ca.CertFile()}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("--cacert with an http endpoint: err = %v, want errUsage", err)
	}
}
