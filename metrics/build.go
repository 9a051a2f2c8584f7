package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkv/node/version"
)

// newBuildInfo is raftkv_build_info: 1, labelled with what this binary is
// (package version), as Prometheus exporters report their build: a query
// joins it to tell which members run which version mid-upgrade.
func newBuildInfo(f factory) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; its labels say which version of node this member runs, the git revision and Go version that built it, and the data format it writes.",
		ConstLabels: prometheus.Labels{
			"version":     version.Version,
			"revision":    version.Revision,
			"goversion":   version.GoVersion(),
			"data_format": version.DataFormat,
		},
	})
	g.Set(1)
	f.register(g)
	return g
}
