package main

import (
	"maps"
	"slices"
	"testing"
)

// The rules of --cluster are membership's (membership/cluster_test.go);
// here, that the flags use them: peer URLs in membership's one form, so
// that :022379 is :22379 in --cluster as in a member add, and the URLs
// derived from them (the default --listen-peer-urls) follow.
func TestFlagsURLsInOneForm(t *testing.T) {
	o, err := parseFlags([]string{"--id", "2", "--cluster", "http://a:012379,HTTP://127.0.0.1:022379/",
		"--listen-client-urls", "http://:022380", "--advertise-client-urls", "http://b:022380"})
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
	if _, err := parseFlags([]string{"--cluster", "http://a:1,http://a:01"}); err == nil {
		t.Error("--cluster with one URL written two ways was taken")
	}
}
