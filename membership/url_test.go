package membership_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/raftkv/node/membership"
)

// A member's URL is refused unless http(s)://host:port with a port from 1
// to 65535 and nothing else, and is kept in one spelling, so that one URL
// written two ways is one URL: in --cluster, in a member add (both routes
// of the HTTP API) and when member URLs are compared.
func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url, want, why string // want "": refused, saying why
	}{
		{"http://h:022379", "http://h:22379", ""},
		{"http://h:0000000000000000000001", "http://h:1", ""},
		{"http://h:65535", "http://h:65535", ""},
		{"https://10.0.0.1:2380", "https://10.0.0.1:2380", ""},
		{"HTTP://h:1", "http://h:1", ""},
		{"http://h:1/", "http://h:1", ""},
		{"http://[::1]:02379", "http://[::1]:2379", ""},
		{"http://[fe80::1%25eth0]:2380", "http://[fe80::1%25eth0]:2380", ""},
		{"http://Host.Example:2380", "http://Host.Example:2380", ""},

		{"http://h:99999", "", "want scheme://host:port, with a port from 1 to 65535"},
		{"http://h:65536", "", "a port from 1 to 65535"},
		{"http://h:0", "", "a port from 1 to 65535"},
		{"http://h:000", "", "a port from 1 to 65535"},
		{"http://h", "", "a port from 1 to 65535"},
		{"http://h:", "", "a port from 1 to 65535"},
		{"http://:2380", "", "want scheme://host:port, with a host"},
		{"http:h:1", "", "with a host"},
		{"ftp://h:1", "", "scheme must be http or https"},
		{"unix:///tmp/raft.sock", "", "scheme must be http or https"},
		{"h:1", "", "scheme must be http or https"},
		{"http://user@h:1", "", "with no user"},
		{"http://user:pw@h:1", "", "with no user"},
		{"http://h:1/raft", "", "with no path"},
		{"http://h:1//", "", "with no path"},
		{"http://h:1?a=b", "", "with no query"},
		{"http://h:1?", "", "with no query"},
		{"http://h:1#f", "", "with no fragment"},
		{"http://h:1#", "", "with no fragment"},
		{"http://h:1:2", "", "invalid port"},
		{"", "", "scheme must be http or https"},
	} {
		got, err := membership.PeerURL(c.url)
		if c.want != "" {
			if err != nil || got != c.want {
				t.Errorf("PeerURL(%q) = %q, %v; want %q", c.url, got, err, c.want)
			}
			continue
		}
		var ue *membership.URLError
		if !errors.As(err, &ue) || ue.URL != c.url || !strings.Contains(ue.Why, c.why) {
			t.Errorf("PeerURL(%q) = %q, %v; want a URLError saying %q", c.url, got, err, c.why)
		}
	}
}

// A URL to listen on may leave the host out (every interface); the rest of
// the rule is ParseURL's.
func TestParseListenURL(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"http://:2380", "http://:2380"},
		{"https://0.0.0.0:02379", "https://0.0.0.0:2379"},
		{"http://127.0.0.1:1/", "http://127.0.0.1:1"},
		{"http://:0", ""},
		{"http://", ""},
		{"http:h:1", ""},
		{"ftp://:1", ""},
		{"http://:1/path", ""},
	} {
		u, err := membership.ParseListenURL(c.url)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("ParseListenURL(%q) = %v, want a refusal", c.url, u)
		case c.want != "" && (err != nil || u.String() != c.want):
			t.Errorf("ParseListenURL(%q) = %v, %v; want %s", c.url, u, err, c.want)
		}
	}
}

func TestSameURL(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"http://h:22379", "http://h:022379", true},
		{"http://h:1/", "HTTP://h:1", true},
		{"http://h:1", "https://h:1", false},
		{"http://h:1", "http://H:1", false}, // hosts are compared as written
		{"http://h:1", "http://h:2", false},
		// What does not parse (a raftexample member's, say) is compared
		// as written.
		{"not a url", "not a url", true},
		{"not a url", "http://h:1", false},
		{"", "", true},
	} {
		if got := membership.SameURL(c.a, c.b); got != c.same {
			t.Errorf("SameURL(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
		if got := membership.SameURL(c.b, c.a); got != c.same {
			t.Errorf("SameURL(%q, %q) = %v, want %v", c.b, c.a, got, c.same)
		}
	}
}
