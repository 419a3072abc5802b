package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestANodeOnASmallFilesystemRefusesWritesAndStaysUp runs a node whose
// data dir is a 48 MiB tmpfs and writes 60 KB cache values until it
// refuses: it answers 507 before the filesystem fills (a full one is a
// SIGBUS in Badger's memory-mapped files, which would end this test's
// process), keeps serving reads and says why it is not ready. It needs
// root (mount) and skips without it.
func TestANodeOnASmallFilesystemRefusesWritesAndStaysUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	// Registered before startNode's cleanup, so it runs after the node
	// has stopped: cleanups run last first.
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	tenantsFile := keyTenants(t, `{"perMinute": 1000000, "burst": 1000000, "user": {"perMinute": 1000000}, "ip": {"perMinute": 1000000}}`)
	cfg := startNode(t, "--data-dir", filepath.Join(dir, "data"), "--tenants", tenantsFile, "--min-free-disk", "24MiB")

	do := func(method, path string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+cfg.HTTPAddr+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer k")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	value := []byte(`"` + strings.Repeat("x", 60_000) + `"`)
	stored := 0
	for ; ; stored++ {
		code, body := do("PUT", fmt.Sprintf("/cache/k%d", stored), value)
		if code == http.StatusInsufficientStorage {
			if !strings.Contains(body, `"insufficient_storage"`) {
				t.Fatalf("507 body %s", body)
			}
			break
		}
		if code != http.StatusOK {
			t.Fatalf("put %d: %d %s", stored, code, body)
		}
		if stored > 48<<20/60_000 {
			t.Fatalf("%d puts of 60 KB answered 200 on a 48 MiB filesystem", stored)
		}
	}
	t.Logf("%d values stored before the watermark", stored)
	if code, body := do("GET", "/cache/k0", nil); code != http.StatusOK {
		t.Fatalf("read below the watermark: %d %s", code, body)
	}
	if code, body := do("GET", "/readyz", nil); code != http.StatusServiceUnavailable || !strings.Contains(body, "free disk space below the watermark") {
		t.Fatalf("/readyz below the watermark: %d %s", code, body)
	}
	if code, _ := do("GET", "/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz below the watermark: %d", code)
	}
}
