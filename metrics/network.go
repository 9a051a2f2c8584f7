package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkv/node/transport"
)

// network exports the transport's per-peer counters. The transport keeps
// plain atomic counters, read here at scrape time, so its hot path does not
// pay for label lookups.
type network struct {
	stats                                func() map[uint64]transport.PeerStats
	sent, received, failed, dropped      *prometheus.Desc
	queueFull, fastFrames, snapshotsSent *prometheus.Desc
	snapshots, snapshotBytes             *prometheus.Desc
}

// RegisterNetwork registers the peer counters of a transport, read through
// stats (transport.HTTP.Stats).
func RegisterNetwork(reg prometheus.Registerer, stats func() map[uint64]transport.PeerStats) error {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", name), help, labels, nil)
	}
	return reg.Register(&network{
		stats:         stats,
		sent:          desc("peer_sent_total", "Messages written to a peer, by channel.", "peer", "channel"),
		received:      desc("peer_received_total", "Messages received from a peer, by channel.", "peer", "channel"),
		failed:        desc("peer_sent_failures_total", "Messages lost to a failed write or POST, by channel.", "peer", "channel"),
		dropped:       desc("peer_dropped_total", "Messages dropped because a channel's queue was full.", "peer", "channel"),
		queueFull:     desc("peer_queue_full_total", "Messages refused because the peer's queue was full.", "peer"),
		fastFrames:    desc("peer_msgapp_fast_frames_total", "msgappv2 0x01 frames received from a peer.", "peer"),
		snapshotsSent: desc("peer_snapshots_sent_total", "Snapshots a peer acknowledged.", "peer"),
		snapshots:     desc("peer_snapshots_total", "Snapshots with a db stream, by direction (received) and outcome (failed, dropped: one already in flight).", "peer", "kind"),
		snapshotBytes: desc("peer_snapshot_bytes_total", "Bytes of db streamed with snapshots, by direction.", "peer", "direction"),
	})
}

func (n *network) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{n.sent, n.received, n.failed, n.dropped, n.queueFull, n.fastFrames, n.snapshotsSent, n.snapshots, n.snapshotBytes} {
		ch <- d
	}
}

func (n *network) Collect(ch chan<- prometheus.Metric) {
	for id, s := range n.stats() {
		peer := strconv.FormatUint(id, 16)
		for _, c := range []struct {
			name string
			s    transport.ChannelStats
		}{{"pipeline", s.Pipeline}, {"msgappv2", s.MsgApp}, {"message", s.Message}} {
			ch <- prometheus.MustNewConstMetric(n.sent, prometheus.CounterValue, float64(c.s.Sent), peer, c.name)
			ch <- prometheus.MustNewConstMetric(n.received, prometheus.CounterValue, float64(c.s.Received), peer, c.name)
			ch <- prometheus.MustNewConstMetric(n.failed, prometheus.CounterValue, float64(c.s.Failed), peer, c.name)
			ch <- prometheus.MustNewConstMetric(n.dropped, prometheus.CounterValue, float64(c.s.Dropped), peer, c.name)
		}
		ch <- prometheus.MustNewConstMetric(n.queueFull, prometheus.CounterValue, float64(s.QueueFull), peer)
		ch <- prometheus.MustNewConstMetric(n.fastFrames, prometheus.CounterValue, float64(s.MsgAppFastFrames), peer)
		ch <- prometheus.MustNewConstMetric(n.snapshotsSent, prometheus.CounterValue, float64(s.SnapshotsSent), peer)
		ch <- prometheus.MustNewConstMetric(n.snapshots, prometheus.CounterValue, float64(s.SnapshotsReceived), peer, "received")
		ch <- prometheus.MustNewConstMetric(n.snapshots, prometheus.CounterValue, float64(s.SnapshotsFailed), peer, "failed")
		ch <- prometheus.MustNewConstMetric(n.snapshots, prometheus.CounterValue, float64(s.SnapshotsDropped), peer, "dropped")
		ch <- prometheus.MustNewConstMetric(n.snapshotBytes, prometheus.CounterValue, float64(s.SnapshotBytesSent), peer, "sent")
		ch <- prometheus.MustNewConstMetric(n.snapshotBytes, prometheus.CounterValue, float64(s.SnapshotBytesReceived), peer, "received")
	}
}
