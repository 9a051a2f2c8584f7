package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftkv/node/transport"
)

// Every metric is registered under the raftkv namespace with a subsystem,
// and an unregistered set works too.
func TestNewRegistersNamespacedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Proposals.Inc()
	m.MessageDuration.WithLabelValues("kv").Observe(0.001)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	subsystems := map[string]bool{}
	for _, f := range families {
		parts := strings.SplitN(f.GetName(), "_", 3)
		if len(parts) < 3 || parts[0] != "raftkv" {
			t.Errorf("metric %q is not raftkv_<subsystem>_<name>", f.GetName())
			continue
		}
		subsystems[parts[1]] = true
	}
	for _, s := range []string{"raft", "kv", "wal", "snapshot", "actor"} {
		if !subsystems[s] {
			t.Errorf("no metric in subsystem %s", s)
		}
	}
	if got := testutil.ToFloat64(m.Proposals); got != 1 {
		t.Fatalf("proposals = %v, want 1", got)
	}

	unregistered := New(nil)
	unregistered.Proposals.Inc() // must not panic
	if (*Node)(nil).PropsOptions("x") != nil {
		t.Fatal("a nil Node gave props options")
	}
}

func TestNetworkExportsTransportStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	stats := map[uint64]transport.PeerStats{
		0x2a: {
			Pipeline:  transport.ChannelStats{Sent: 3, Failed: 1},
			MsgApp:    transport.ChannelStats{Sent: 10, Received: 7},
			Message:   transport.ChannelStats{Dropped: 2},
			QueueFull: 4, MsgAppFastFrames: 5, SnapshotsSent: 1,
		},
	}
	if err := RegisterNetwork(reg, func() map[uint64]transport.PeerStats { return stats }); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP raftkv_network_peer_sent_total Messages written to a peer, by channel.
# TYPE raftkv_network_peer_sent_total counter
raftkv_network_peer_sent_total{channel="message",peer="2a"} 0
raftkv_network_peer_sent_total{channel="msgappv2",peer="2a"} 10
raftkv_network_peer_sent_total{channel="pipeline",peer="2a"} 3
# HELP raftkv_network_peer_queue_full_total Messages refused because the peer's queue was full.
# TYPE raftkv_network_peer_queue_full_total counter
raftkv_network_peer_queue_full_total{peer="2a"} 4
# HELP raftkv_network_peer_dropped_total Messages dropped because a channel's queue was full.
# TYPE raftkv_network_peer_dropped_total counter
raftkv_network_peer_dropped_total{channel="message",peer="2a"} 2
raftkv_network_peer_dropped_total{channel="msgappv2",peer="2a"} 0
raftkv_network_peer_dropped_total{channel="pipeline",peer="2a"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"raftkv_network_peer_sent_total", "raftkv_network_peer_queue_full_total", "raftkv_network_peer_dropped_total"); err != nil {
		t.Fatal(err)
	}
}
