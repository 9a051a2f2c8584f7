package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/tlsfiles"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// peerCN is the common name of every member's peer certificate: members
// accept peers with this name only (--peer-cert-allowed-cn).
const peerCN = "raftkv-peer"

// tlsClient is an HTTPS client that trusts ca and presents the certificate
// in certFile/keyFile ("" for none).
func tlsClient(t *testing.T, ca *testcerts.CA, certFile, keyFile string) *http.Client {
	t.Helper()
	c, err := tlsfiles.NewClient(tlsfiles.Files{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: ca.CertFile()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialTLSContext: c.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second}),
	}}
}

// A cluster whose members talk mutual TLS with each other and TLS with
// clients (which must show a certificate too) replicates, survives the
// kill and restart of a member, and refuses, at the handshake, anyone
// without a certificate of its CA: plaintext, no certificate, another CA,
// another name.
func TestMutualTLSCluster(t *testing.T) {
	ca := testcerts.NewCA(t, "raftkv test CA")
	clientCert, clientKey := ca.Issue(t, "client")
	client := tlsClient(t, ca, clientCert, clientKey)
	c := newClusterWith(t, 3, clusterOpts{
		scheme: "https",
		client: client,
		memberFlags: func(m *member) []string {
			cert, key := ca.Issue(t, peerCN)
			return []string{
				"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca.CertFile(),
				"--peer-client-cert-auth", "--peer-cert-allowed-cn", peerCN,
				"--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca.CertFile(), "--client-cert-auth",
			}
		},
	})
	lead := c.leader(c.members...)
	w := startWriters(t, "tls", c.members...)
	w.waitAcked(t, 60, 20*time.Second)

	victim := c.others(lead)[0]
	kill9(t, victim.p)
	c.leader(c.others(victim)...)
	killedAt := w.count()
	w.waitAcked(t, killedAt+60, 20*time.Second)
	c.restart(victim)
	w.waitAcked(t, w.count()+60, 20*time.Second)
	w.halt()
	checkAll(t, w.snapshot(), c.members...)

	other := testcerts.NewCA(t, "another CA")
	otherCert, otherKey := other.Issue(t, "client")
	strangerCert, strangerKey := ca.Issue(t, "stranger")
	peerURL := c.members[0].peerURL
	for _, r := range []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"plaintext to the client port", httpClient, strings.Replace(lead.base, "https://", "http://", 1) + "/v1/status"},
		{"plaintext to the peer port", httpClient, strings.Replace(peerURL, "https://", "http://", 1) + "/raft/probing"},
		{"no client certificate", tlsClient(t, ca, "", ""), lead.base + "/v1/status"},
		{"a client certificate of another CA", tlsClient(t, ca, otherCert, otherKey), lead.base + "/v1/status"},
		{"no peer certificate", tlsClient(t, ca, "", ""), peerURL + "/raft/probing"},
		{"a peer certificate of another CA", tlsClient(t, ca, otherCert, otherKey), peerURL + "/raft/probing"},
		{"a peer certificate with another name", tlsClient(t, ca, strangerCert, strangerKey), peerURL + "/raft/probing"},
	} {
		resp, err := r.client.Get(r.url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				continue // a plaintext request gets 400 from the TLS listener
			}
			t.Errorf("%s: %s answered %d", r.name, r.url, resp.StatusCode)
			continue
		}
		t.Logf("%s: refused: %v", r.name, err)
		r.client.CloseIdleConnections()
	}
	// The refusals happened at the handshake: the peer server never saw a
	// request from a stranger, so nothing reached the raft actor.
	if !strings.Contains(c.members[0].p.Output(), "TLS handshake error") {
		t.Errorf("member 1 logged no refused TLS handshake")
	}
}

// A member's certificate files replaced on disk are served from the next
// connection on, without a restart.
func TestCertificateRotation(t *testing.T) {
	ca := testcerts.NewCA(t, "raftkv test CA")
	clientCert, clientKey := ca.Issue(t, "client")
	dir := t.TempDir()
	cert, key := dir+"/member.pem", dir+"/member-key.pem"
	ca.IssueTo(t, "before rotation", cert, key)
	c := newClusterWith(t, 1, clusterOpts{
		scheme: "https",
		client: tlsClient(t, ca, clientCert, clientKey),
		memberFlags: func(*member) []string {
			peerCert, peerKey := ca.Issue(t, peerCN)
			return []string{"--cert-file", cert, "--key-file", key,
				"--peer-cert-file", peerCert, "--peer-key-file", peerKey, "--peer-trusted-ca-file", ca.CertFile()}
		},
	})
	m := c.members[0]
	served := func() string {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(m.base, "https://"), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "before rotation" {
		t.Fatalf("served %q", got)
	}
	ca.IssueTo(t, "after rotation", cert, key)
	testutil.Eventually(t, 10*time.Second, "the rotated certificate served", func() error {
		got := served()
		if got == "after rotation" {
			return nil
		}
		return errors.New("still " + got)
	})
	mustWrite(t, m.base, "/after-rotation", "v", http.StatusNoContent)
	if bytes.Contains([]byte(m.p.Output()), []byte(`"level":"error"`)) {
		t.Errorf("errors logged around the rotation:\n%s", testutil.Tail(m.p.Output(), 20))
	}
}

// etcd's gRPC API shares the client port and its TLS: a client with a
// certificate of the CA is served over HTTP/2, one without is refused at
// the handshake, and HTTP/1.1 clients of the same port are still served.
func TestGRPCOverMutualTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "raftkv test CA")
	clientCert, clientKey := ca.Issue(t, "client")
	c := newClusterWith(t, 1, clusterOpts{
		scheme: "https",
		client: tlsClient(t, ca, clientCert, clientKey),
		memberFlags: func(m *member) []string {
			cert, key := ca.Issue(t, peerCN)
			return []string{
				"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca.CertFile(),
				"--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca.CertFile(), "--client-cert-auth",
			}
		},
	})
	m := c.leader(c.members...)
	addr := strings.TrimPrefix(m.base, "https://")
	dial := func(certFile, keyFile string) pb.MaintenanceClient {
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if certFile != "" {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return pb.NewMaintenanceClient(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := dial(clientCert, clientKey).Status(ctx, &pb.StatusRequest{})
	if err != nil || st.Leader != m.id {
		t.Fatalf("status over TLS: %v %v", st, err)
	}
	if _, err := dial("", "").Status(ctx, &pb.StatusRequest{}); err == nil {
		t.Fatalf("a gRPC client without a certificate was served")
	}
	mustWrite(t, m.base, "/over-http1", "still served", http.StatusNoContent)
	mustRead(t, m.base, "/over-http1", "still served")
}
