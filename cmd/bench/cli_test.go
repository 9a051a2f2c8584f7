package main

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestParseArgsDefaults(t *testing.T) {
	cfg, err := parseArgs([]string{"mixed"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		command:   cmdMixed,
		endpoints: []string{"http://127.0.0.1:12380"},
		target:    targetSpread,
		clients:   64,
		valSize:   100,
		keySize:   16,
		duration:  30 * time.Second,
		keyPrefix: "bench-",
		timeout:   5 * time.Second,
		keys:      1000,
		readRatio: 0.9,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(config) bool
	}{
		{"total replaces duration", []string{"put", "--total", "1000"},
			func(c config) bool { return c.total == 1000 && c.duration == 0 }},
		{"endpoints normalised", []string{"put", "--endpoints", " http://a:1/ ,https://b:2"},
			func(c config) bool { return slices.Equal(c.endpoints, []string{"http://a:1", "https://b:2"}) }},
		{"leader, serializable", []string{"get", "--target", "leader", "--consistency", "serializable", "--keys", "5"},
			func(c config) bool { return c.target == targetLeader && c.serializable && c.keys == 5 }},
		{"json, sizes", []string{"put", "--json", "--val-size", "0", "--key-size", "64", "--clients", "1"},
			func(c config) bool { return c.json && c.valSize == 0 && c.keySize == 64 && c.clients == 1 }},
		{"read ratio bounds", []string{"mixed", "--read-ratio", "1"},
			func(c config) bool { return c.readRatio == 1 }},
		{"cas: a key per client", []string{"cas", "--clients", "10"},
			func(c config) bool { return c.contention == 1 && c.keys == 10 }},
		{"cas: contention", []string{"cas", "--clients", "10", "--contention", "4"},
			func(c config) bool { return c.contention == 4 && c.keys == 3 }},
		{"txn defaults", []string{"txn"},
			func(c config) bool { return c.txnOps == 2 && c.txnCompare }},
		{"txn flags", []string{"txn", "--txn-ops", "128", "--compare=false"},
			func(c config) bool { return c.txnOps == 128 && !c.txnCompare }},
		{"range defaults", []string{"range"},
			func(c config) bool { return c.rangeLimit == 100 && !c.keysOnly && c.keys == 1000 && !c.serializable }},
		{"range flags", []string{"range", "--range-limit", "10000", "--keys-only", "--consistency", "serializable", "--keys", "5"},
			func(c config) bool { return c.rangeLimit == 10000 && c.keysOnly && c.serializable && c.keys == 5 }},
		{"watch defaults", []string{"watch"},
			func(c config) bool { return c.watchers == 100 && c.watchGrace == 5*time.Second }},
		{"watch flags", []string{"watch", "--watchers", "1000", "--watch-grace", "0s", "--target", "leader"},
			func(c config) bool { return c.watchers == 1000 && c.watchGrace == 0 && c.target == targetLeader }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseArgs(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

func TestParseArgsRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"delete"}},
		{"flag before command", []string{"--clients", "3", "put"}},
		{"stray argument", []string{"put", "extra"}},
		{"both duration and total", []string{"put", "--duration", "5s", "--total", "5"}},
		{"zero total", []string{"put", "--total", "0"}},
		{"zero duration", []string{"put", "--duration", "0s"}},
		{"no clients", []string{"put", "--clients", "0"}},
		{"negative value size", []string{"put", "--val-size", "-1"}},
		{"zero timeout", []string{"put", "--timeout", "0s"}},
		{"bad target", []string{"put", "--target", "random"}},
		{"bad consistency", []string{"get", "--consistency", "eventual"}},
		{"no keys", []string{"get", "--keys", "0"}},
		{"ratio above 1", []string{"mixed", "--read-ratio", "1.5"}},
		{"consistency on put", []string{"put", "--consistency", "serializable"}},
		{"read ratio on get", []string{"get", "--read-ratio", "0.5"}},
		{"endpoint without scheme", []string{"put", "--endpoints", "127.0.0.1:12380"}},
		{"endpoint with path", []string{"put", "--endpoints", "http://a:1/v1"}},
		{"no endpoints", []string{"put", "--endpoints", " , "}},
		{"no contention", []string{"cas", "--contention", "0"}},
		{"keys on cas", []string{"cas", "--keys", "5"}},
		{"consistency on cas", []string{"cas", "--consistency", "serializable"}},
		{"contention on txn", []string{"txn", "--contention", "2"}},
		{"no txn ops", []string{"txn", "--txn-ops", "0"}},
		{"too many txn ops", []string{"txn", "--txn-ops", "129"}},
		{"no range limit", []string{"range", "--range-limit", "0"}},
		{"range limit too high", []string{"range", "--range-limit", "10001"}},
		{"range limit on get", []string{"get", "--range-limit", "5"}},
		{"no watchers", []string{"watch", "--watchers", "0"}},
		{"negative grace", []string{"watch", "--watch-grace", "-1s"}},
		{"watch prefix with a quote", []string{"watch", "--key-prefix", `a"b`}},
		{"keys on watch", []string{"watch", "--keys", "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgs(tt.args, io.Discard)
			if !errors.Is(err, errUsage) {
				t.Errorf("err = %v, want errUsage", err)
			}
		})
	}
	if _, err := parseArgs([]string{"get", "-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
}
