package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A member whose disk fills stops with a clear line, exit 1, and loses
// nothing: once space is freed it restarts from its data dir and catches
// up. Its data dir is on a tmpfs of its own, filled by a file the test
// then removes.
func TestDiskFullStopsAndRecovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs for a full disk needs root")
	}
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	victim := c.others(lead)[0]

	// Move the victim's data dir onto a small tmpfs: stop it, mount, copy.
	victim.p.SignalAndWait(t, os.Interrupt, 0, 20*time.Second)
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", mnt, err, out)
		}
	})
	moved := filepath.Join(mnt, "node")
	if out, err := exec.Command("cp", "-a", victim.dataDir, moved).CombinedOutput(); err != nil {
		t.Fatalf("copy the data dir: %v: %s", err, out)
	}
	for i, a := range victim.args {
		if a == victim.dataDir {
			victim.args[i] = moved
		}
	}
	victim.dataDir = moved
	c.restart(victim)
	c.leader(c.members...)

	// Fill the disk but for a little room.
	filler := filepath.Join(mnt, "filler")
	fill := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=1M")
	_ = fill.Run() // ends with "No space left on device"
	if err := os.Truncate(filler, fileSize(t, filler)-512<<10); err != nil {
		t.Fatal(err)
	}

	value := strings.Repeat("v", 64<<10)
	acked := make(map[string]string)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; victim.p.Running(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs on a full disk after %d writes", victim.name(), i)
		}
		key := fmt.Sprintf("/full-%04d", i)
		if r := call(http.MethodPut, lead.base+key, value); r.code == http.StatusNoContent {
			acked[key] = value
		}
	}
	victim.p.WaitExit(t, 1, 20*time.Second)
	out := victim.p.Output()
	last := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if !strings.HasPrefix(last, "node: ") || !strings.Contains(last, "no space left on device") {
		t.Fatalf("%s's last line does not say the disk is full: %q", victim.name(), last)
	}
	t.Logf("%s stopped after %d writes: %s", victim.name(), len(acked), last)

	// The others go on; once space is freed, the victim catches up.
	mustWrite(t, lead.base, "/after-full", "still serving", http.StatusNoContent)
	acked["/after-full"] = "still serving"
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.restart(victim)
	checkAll(t, acked, c.members...)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
