package main

import (
	"errors"
	"flag"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The rules of --cluster are membership's (membership/cluster_test.go);
// here, that the flags use them: peer URLs in membership's one form, so
// that :022379 is :22379 in --cluster as in a member add, and the URLs
// derived from them (the default --listen-peer-urls) follow.
func TestFlagsURLsInOneForm(t *testing.T) {
	o, err := parseFlags([]string{"--id", "2", "--cluster", "http://a:012379,HTTP://127.0.0.1:022379/",
		"--listen-client-urls", "http://:022380", "--advertise-client-urls", "http://b:022380"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uint64]string{1: "http://a:12379", 2: "http://127.0.0.1:22379"}; !maps.Equal(o.peers, want) {
		t.Errorf("peers %v, want %v", o.peers, want)
	}
	if len(o.listenPeer) != 1 || o.listenPeer[0].String() != "http://127.0.0.1:22379" {
		t.Errorf("listen peer URLs %v, want this member's --cluster URL", o.listenPeer)
	}
	if len(o.listenClient) != 1 || o.listenClient[0].String() != "http://:22380" {
		t.Errorf("listen client URLs %v, want http://:22380", o.listenClient)
	}
	if !slices.Equal(o.advertiseClient, []string{"http://b:22380"}) {
		t.Errorf("advertised client URLs %v, want http://b:22380", o.advertiseClient)
	}
	// One URL written two ways is given twice.
	if _, err := parseFlags([]string{"--cluster", "http://a:1,http://a:01"}, nil); err == nil {
		t.Error("--cluster with one URL written two ways was taken")
	}
}

// Flags from the environment: RAFTKV_<FLAG> sets a flag the command line
// did not give, and counts as given for the checks of flags that exclude
// each other; an unknown variable, a bad value and RAFTKV_VERSION are
// refused with one line naming the variable.
func TestFlagsFromEnv(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		env     []string
		check   func(options) string // "" when o is right
		wantErr string               // a part of the error; "" for none
	}{
		{
			name: "every kind of flag from the environment",
			env: []string{"PATH=/bin", "RAFTKV_ID=2", "RAFTKV_CLUSTER=http://a:1,http://127.0.0.1:2",
				"RAFTKV_LISTEN_CLIENT_URLS=http://127.0.0.1:3", "RAFTKV_DATA_DIR=/d", "RAFTKV_JOIN=true",
				"RAFTKV_QUOTA_BACKEND_BYTES=0", "RAFTKV_LOG_LEVEL=warn"},
			check: func(o options) string {
				if o.id != 2 || len(o.peers) != 2 || o.dataDir != "/d" || !o.join || o.quota != 0 || o.logLevel.String() != "warn" ||
					len(o.listenClient) != 1 || o.listenClient[0].String() != "http://127.0.0.1:3" {
					return "not every variable was taken"
				}
				return ""
			},
		},
		{
			name: "the command line wins",
			args: []string{"--data-dir", "/cli", "--join=false"},
			env:  []string{"RAFTKV_DATA_DIR=/env", "RAFTKV_JOIN=true"},
			check: func(o options) string {
				if o.dataDir != "/cli" || o.join {
					return "the environment won over the command line"
				}
				return ""
			},
		},
		{
			name: "an empty variable sets nothing",
			env:  []string{"RAFTKV_DATA_DIR=", "RAFTKV_PORT="},
			check: func(o options) string {
				if o.dataDir != "node-1" || o.listenClient[0].Port() != "12380" {
					return "an empty variable changed a default"
				}
				return ""
			},
		},
		{
			name:  "the tests' own variables are not flags",
			env:   []string{"RAFTKV_TEST_LOG=1", "RAFTKV_BE_NODE=1"},
			check: func(options) string { return "" },
		},
		{
			name:    "a variable set counts as a flag given",
			env:     []string{"RAFTKV_PORT=5000", "RAFTKV_LISTEN_CLIENT_URLS=http://127.0.0.1:5001"},
			wantErr: "--port and --listen-client-urls exclude each other",
		},
		{
			name:    "one from the command line, one from the environment",
			args:    []string{"--port", "5000"},
			env:     []string{"RAFTKV_LISTEN_CLIENT_URLS=http://127.0.0.1:5001"},
			wantErr: "--port and --listen-client-urls exclude each other",
		},
		{name: "an unknown variable", env: []string{"RAFTKV_DATADIR=/d"}, wantErr: "environment variable RAFTKV_DATADIR names no flag"},
		{name: "the prefix alone", env: []string{"RAFTKV_=x"}, wantErr: "environment variable RAFTKV_ names no flag"},
		{name: "an unknown variable although the command line is complete", args: []string{"--data-dir", "/d"}, env: []string{"RAFTKV_NOPE="}, wantErr: "RAFTKV_NOPE names no flag"},
		{name: "a bad number", env: []string{"RAFTKV_PORT=http"}, wantErr: `invalid value "http" for environment variable RAFTKV_PORT (--port)`},
		{name: "a bad bool", env: []string{"RAFTKV_JOIN=maybe"}, wantErr: `invalid value "maybe" for environment variable RAFTKV_JOIN (--join)`},
		{name: "a value the checks refuse", env: []string{"RAFTKV_LOG_LEVEL=loud"}, wantErr: `--log-level "loud"`},
		{name: "version is the command line's", env: []string{"RAFTKV_VERSION=1.2.3"}, wantErr: "RAFTKV_VERSION: --version is taken from the command line only"},
		{name: "names are case-sensitive", env: []string{"raftkv_data_dir=/d"}, check: func(o options) string {
			if o.dataDir != "node-1" {
				return "a lower-case variable was taken"
			}
			return ""
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseFlags(c.args, c.env)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := c.check(o); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// --version is answered before the environment is read: a bad variable
// does not keep an operator from learning which binary this is.
func TestVersionFlag(t *testing.T) {
	if _, err := parseFlags([]string{"--version"}, []string{"RAFTKV_NOPE=1"}); !errors.Is(err, errVersion) {
		t.Fatalf("parseFlags(--version): %v, want errVersion", err)
	}
	if _, err := parseFlags([]string{"--version", "extra"}, nil); err == nil || errors.Is(err, errVersion) {
		t.Fatalf("parseFlags(--version extra): %v, want an error for the argument", err)
	}
}

// Every flag has a variable, and no two flags share one.
func TestEveryFlagHasAVariable(t *testing.T) {
	var raw rawFlags
	fs := newFlagSet(&raw)
	seen := make(map[string]string)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		v := envName(f.Name)
		if other, ok := seen[v]; ok {
			t.Errorf("--%s and --%s are both %s", f.Name, other, v)
		}
		seen[v] = f.Name
		if f.Name == "version" {
			return
		}
		// Setting the variable to the flag's default counts it as given.
		var env []string
		if f.DefValue != "" {
			env = []string{v + "=" + f.DefValue}
		}
		fs2 := newFlagSet(&rawFlags{})
		set := map[string]bool{}
		if err := setFromEnv(fs2, set, env); err != nil {
			t.Errorf("%s: %v", v, err)
		} else if f.DefValue != "" && !set[f.Name] {
			t.Errorf("%s did not set --%s", v, f.Name)
		}
	})
	if n < 25 {
		t.Fatalf("%d flags visited", n)
	}
	if envName("listen-client-urls") != "RAFTKV_LISTEN_CLIENT_URLS" {
		t.Errorf("--listen-client-urls is %s", envName("listen-client-urls"))
	}
}
