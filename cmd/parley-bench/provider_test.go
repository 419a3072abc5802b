package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-chat/parley/actors/model"
)

func TestUpstreamRepliesAsTheMockAndNotesEachDelta(t *testing.T) {
	u := startUpstream()
	defer u.Close()
	const msg = "provider 1 0 7"
	body := `{"model":"` + providerModel + `","stream":true,"stream_options":{"include_usage":true},` +
		`"messages":[{"role":"system","content":"template"},{"role":"user","content":"earlier"},{"role":"assistant","content":"reply"},{"role":"user","content":"` + msg + `"}]}`
	resp, err := http.Post(u.BaseURL()+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := model.Tokens(expectedReply(msg))
	if n := strings.Count(string(raw), `"delta":{"content":`); n != len(want) {
		t.Errorf("stream has %d content deltas, want one per mock token (%d)", n, len(want))
	}
	written := u.take(msg)
	if len(written) != len(want) {
		t.Fatalf("noted %d writes, want one per token (%d)", len(written), len(want))
	}
	for i := 1; i < len(written); i++ {
		if written[i].Before(written[i-1]) {
			t.Errorf("delta %d noted before delta %d", i, i-1)
		}
	}
	if again := u.take(msg); again != nil {
		t.Errorf("take kept %d writes after it returned them", len(again))
	}
}
