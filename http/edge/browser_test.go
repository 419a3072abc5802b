package edge_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/http/edge"
)

// These tests drive a real headless Chromium (Debian's chromium package)
// over the DevTools protocol. Outside CI they are skipped when it is not
// installed; in CI (CI set) its absence is a failure.

// newBrowser starts a headless Chromium with a fresh profile and returns
// the context of its first tab. The whole browser lives at most 40 s.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("chromium is not installed (apt-get install chromium): skipping the browser tests, which CI runs")
		}
		t.Fatalf("CI is set but chromium is not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium reaches out to the network on its own.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// js evaluates a JavaScript expression in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	must(t, err)
	return v
}

// waitJS polls a JavaScript expression until it gives want.
func waitJS[T comparable](t *testing.T, ctx context.Context, expr string, want T) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, func() error {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s = %v, want %v", expr, got, want)
		}
		return nil
	})
}

const (
	lastReplyJS = `[...document.querySelectorAll("#log li[data-role=assistant]")].at(-1)`
	replyTextJS = `(` + lastReplyJS + `?.querySelector(".text")?.textContent ?? "")`
)

func TestPlaygroundStreamsPagesHistoryAndStopsInChromium(t *testing.T) {
	a := newAPI(t, nil)
	gate := make(chan struct{})
	a.gate.next = gate // each token waits for the test
	ctx := newBrowser(t)

	const message = "hello from chromium"
	want := model.Tokens(model.MockReply(model.Request{Message: message}))
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(a.url+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), acmeKey),
		chromedp.SendKeys(chromedp.ID("message"), message),
		chromedp.Click(chromedp.ID("send")),
	))

	// The page's script runs (it made a session) and its style applies:
	// the Content-Security-Policy lets both through by hash.
	if margin := js[string](t, ctx, `getComputedStyle(document.body).margin`); margin != "0px" {
		t.Errorf("body margin %q: the page's style was blocked", margin)
	}

	// The reply grows in the page token by token, before it is done.
	for i := range 3 {
		gate <- struct{}{}
		waitJS(t, ctx, replyTextJS, strings.Join(want[:i+1], ""))
		if done := js[bool](t, ctx, lastReplyJS+`.dataset.done !== undefined`); done {
			t.Fatalf("reply marked done after %d of %d tokens", i+1, len(want))
		}
		if js[bool](t, ctx, `document.getElementById("stop").disabled`) {
			t.Fatal("Stop is disabled while a reply streams")
		}
	}
	close(gate)
	waitJS(t, ctx, lastReplyJS+`?.dataset.done ?? ""`, "true")
	if got := js[string](t, ctx, replyTextJS); got != strings.Join(want, "") {
		t.Fatalf("reply %q, want %q", got, strings.Join(want, ""))
	}
	if meta := js[string](t, ctx, lastReplyJS+`.querySelector(".meta").textContent`); !regexp.MustCompile(`trace [0-9a-f]{32}`).MatchString(meta) {
		t.Errorf("done line %q lacks the trace id", meta)
	}

	// Twenty more messages make the history two pages; after a reload the
	// page shows the newest twenty, and the first two after "older".
	sid := js[string](t, ctx, `document.getElementById("session").value`)
	for i := range 10 {
		if resp := a.chat(acmeKey, sid, fmt.Sprintf("filler %d", i), false); resp.StatusCode != http.StatusOK {
			t.Fatalf("filler chat: %d", resp.StatusCode)
		}
	}
	must(t, chromedp.Do(ctx, chromedp.Reload()))
	waitJS(t, ctx, `document.querySelectorAll("#log li").length`, 20)
	waitJS(t, ctx, `document.getElementById("older").hidden`, false)
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("older"))))
	waitJS(t, ctx, `document.querySelectorAll("#log li").length`, 22)
	waitJS(t, ctx, `document.getElementById("older").hidden`, true)
	first := js[[]string](t, ctx, `[...document.querySelectorAll("#log li .text")].slice(0, 2).map((e) => e.textContent)`)
	if len(first) != 2 || first[0] != message || first[1] != strings.Join(want, "") {
		t.Fatalf("oldest messages %q", first)
	}
	if js[bool](t, ctx, `document.getElementById("status").classList.contains("error")`) {
		t.Fatalf("status shows an error: %s", js[string](t, ctx, `document.getElementById("status").textContent`))
	}

	// Stop ends a reply the model is still writing: the page is ready for
	// the next message.
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	a.gate.next = hold
	// The page is idle again (its resume check after the reload is done):
	// a message sent while it runs would be ignored.
	waitJS(t, ctx, `document.getElementById("send").disabled`, false)
	must(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("message"), "a long story please"),
		chromedp.Click(chromedp.ID("send")),
	))
	hold <- struct{}{}
	waitJS(t, ctx, `document.getElementById("stop").disabled`, false)
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("stop"))))
	waitJS(t, ctx, `document.getElementById("send").disabled`, false)
	waitJS(t, ctx, `document.getElementById("stop").disabled`, true)
}

type crossOriginResult struct {
	Status  int    `json:"status"`
	TraceID string `json:"traceId"`
	Error   string `json:"error"`
}

func TestPageOnAnotherOriginCallsParleyOnlyWhereItsTenantAllowsInChromium(t *testing.T) {
	page := func() *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!doctype html><title>another app</title>")
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	acmeApp, globexApp, stranger := page(), page(), page()
	reg, err := tenants.Parse(strings.NewReader(`{"tenants": [
		{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + tenants.HashKey(acmeKey) + `"}], "cors": {"allowedOrigins": ["` + acmeApp.URL + `"]}},
		{"id": "globex", "apiKeys": [{"id": "app", "hash": "` + tenants.HashKey(globexKey) + `"}], "cors": {"allowedOrigins": ["` + globexApp.URL + `"]}}]}`))
	must(t, err)
	a := newAPI(t, func(c *edge.Config) { c.Tenants = reg })
	ctx := newBrowser(t)

	call := func(from, key string) crossOriginResult {
		t.Helper()
		must(t, chromedp.Do(ctx, chromedp.Navigate(from+"/")))
		v, err := chromedp.Run(ctx, chromedp.Evaluate[crossOriginResult](fmt.Sprintf(`(async () => {
			try {
				const resp = await fetch(%q + "/chat", {method: "POST",
					headers: {"Authorization": "Bearer " + %q, "Content-Type": "application/json", "X-User-Id": "u1"},
					body: JSON.stringify({sessionId: crypto.randomUUID(), message: "hi from another origin", stream: false})});
				return {status: resp.status, traceId: resp.headers.get("X-Trace-Id") ?? "", error: ""};
			} catch (e) {
				return {status: 0, traceId: "", error: String(e)};
			}
		})()`, a.url, key), chromedp.EvalAwaitPromise))
		must(t, err)
		return v
	}

	for _, c := range []struct{ from, key string }{{acmeApp.URL, acmeKey}, {globexApp.URL, globexKey}} {
		got := call(c.from, c.key)
		if got.Status != http.StatusOK || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got.TraceID) {
			t.Fatalf("from %s with its own tenant's key: %+v", c.from, got)
		}
	}
	// globex's origin passes the preflight, but acme's answers are not
	// readable there; a stranger's origin does not pass the preflight.
	for _, c := range []struct{ from, key string }{{globexApp.URL, acmeKey}, {stranger.URL, acmeKey}} {
		got := call(c.from, c.key)
		if got.Status != 0 || !strings.Contains(got.Error, "Failed to fetch") {
			t.Fatalf("from %s with acme's key: %+v, want a failed fetch", c.from, got)
		}
	}
}

// A reload in the middle of a reply picks it up again: the page asks GET
// /chat/{sessionId}/stream on load, which replays the reply from its first
// token and then follows it to its end.
func TestPlaygroundResumesAReplyAfterAReloadInChromium(t *testing.T) {
	a := newAPI(t, nil)
	gate := make(chan struct{})
	a.gate.next = gate
	ctx := newBrowser(t)

	const message = "resume me after a reload"
	want := model.Tokens(model.MockReply(model.Request{Message: message}))
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(a.url+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), acmeKey),
		chromedp.SendKeys(chromedp.ID("message"), message),
		chromedp.Click(chromedp.ID("send")),
	))
	for i := range 2 {
		gate <- struct{}{}
		waitJS(t, ctx, replyTextJS, strings.Join(want[:i+1], ""))
	}
	must(t, chromedp.Do(ctx, chromedp.Reload()))
	// The reply in progress is not in the history yet: the bubble that
	// shows its first tokens again is the resumed stream's.
	waitJS(t, ctx, replyTextJS, strings.Join(want[:2], ""))
	waitJS(t, ctx, `document.getElementById("status").textContent`, "Resumed a reply in progress")
	close(gate)
	waitJS(t, ctx, lastReplyJS+`?.dataset.done ?? ""`, "true")
	if got := js[string](t, ctx, replyTextJS); got != strings.Join(want, "") {
		t.Fatalf("resumed reply %q, want %q", got, strings.Join(want, ""))
	}
	if n := js[int](t, ctx, `document.querySelectorAll("#log li[data-role=assistant]").length`); n != 1 {
		t.Fatalf("%d assistant messages on the page, want the one resumed", n)
	}
}
