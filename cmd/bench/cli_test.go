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
		{"unknown command", []string{"watch"}},
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
