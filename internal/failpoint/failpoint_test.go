package failpoint

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The client speaks gofail's endpoint as gofail's runtime serves it: 204
// for a switch, the count as a number, and any other answer an error.
func TestClient(t *testing.T) {
	terms := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		switch {
		case r.Method == http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			terms[name] = string(b)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete:
			delete(terms, name)
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(name, "/count") && terms[strings.TrimSuffix(name, "/count")] != "":
			_, _ = io.WriteString(w, "3\n")
		case name == "":
			_, _ = io.WriteString(w, "a=\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := Client{Addr: strings.TrimPrefix(srv.URL, "http://")}
	if err := c.Set("a", `1*panic("x")`); err != nil || terms["a"] != `1*panic("x")` {
		t.Fatalf("Set: %v, terms %v", err, terms)
	}
	if n, err := c.Count("a"); err != nil || n != 3 {
		t.Fatalf("Count: %d, %v", n, err)
	}
	if err := c.Clear("a"); err != nil || terms["a"] != "" {
		t.Fatalf("Clear: %v, terms %v", err, terms)
	}
	if _, err := c.Count("a"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Count of a failpoint off: %v, want the 404", err)
	}
	if l, err := c.List(); err != nil || l != "a=\n" {
		t.Fatalf("List: %q, %v", l, err)
	}
}
