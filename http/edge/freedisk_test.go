package edge_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/http/edge"
	"github.com/parley-chat/parley/persistence/diskspace"
)

func TestBelowTheDiskWatermarkWritesGet507AndReadsAndDeletesGoOn(t *testing.T) {
	t.Parallel()
	disk := diskspace.NewFixed(10<<30, 100<<30)
	watermark, err := diskspace.ParseWatermark("1GiB")
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, func(c *edge.Config) { c.Disk = diskspace.NewGuard(disk, watermark, nil) })
	sid := uuid.NewString()
	if resp := a.chat(acmeKey, sid, "before the disk filled", false); resp.StatusCode != http.StatusOK {
		t.Fatalf("chat with room: %d", resp.StatusCode)
	}
	if resp := a.cachePut("flags", acmeKey, `{"beta": true}`, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("cache put with room: %d", resp.StatusCode)
	}

	disk.Set(512<<20, 100<<30, nil)
	for name, resp := range map[string]*http.Response{
		"chat":      a.chat(acmeKey, sid, "after", false),
		"cache put": a.cachePut("flags", acmeKey, `{"beta": false}`, ""),
	} {
		if resp.StatusCode != http.StatusInsufficientStorage {
			t.Fatalf("%s below the watermark: %d", name, resp.StatusCode)
		}
		if body := errorBody(t, resp); body.Error.Code != edge.CodeInsufficientStorage {
			t.Fatalf("%s: %+v", name, body.Error)
		}
	}
	if h := a.history(acmeKey, sid, ""); len(h.Messages) != 2 {
		t.Fatalf("history below the watermark: %d messages, want the first exchange", len(h.Messages))
	}
	resp := a.do("GET", "/cache/flags", acmeKey, "", nil)
	if got, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("cache get below the watermark: %d %s", resp.StatusCode, got)
	}
	if resp := a.do("DELETE", "/cache/flags", acmeKey, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("cache delete below the watermark: %d", resp.StatusCode)
	}
	if resp := a.do("DELETE", "/chat/"+sid, acmeKey, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("session delete below the watermark: %d", resp.StatusCode)
	}

	disk.Set(2<<30, 100<<30, nil)
	if resp := a.cachePut("flags", acmeKey, `{"beta": true}`, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("cache put with room again: %d", resp.StatusCode)
	}
}
