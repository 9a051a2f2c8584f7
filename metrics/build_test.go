package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkv/node/version"
)

// raftkv_build_info is 1, with this binary's version in its labels.
func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"version": version.Version, "revision": version.Revision,
		"goversion": version.GoVersion(), "data_format": version.DataFormat}
	for _, f := range families {
		if f.GetName() != "raftkv_build_info" {
			continue
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("%d series, want 1", len(f.GetMetric()))
		}
		m := f.GetMetric()[0]
		if v := m.GetGauge().GetValue(); v != 1 {
			t.Errorf("value %v, want 1", v)
		}
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(want) {
			t.Errorf("labels %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v || v == "" {
				t.Errorf("label %s = %q, want %q", k, got[k], v)
			}
		}
		return
	}
	t.Fatal("no raftkv_build_info")
}
