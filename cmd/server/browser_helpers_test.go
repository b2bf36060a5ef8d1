package main

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/storage"
)

// Every browser test leaves a picture of the page it checked, for people
// to look at. The ones README shows, in testdata/screenshots, are replaced
// only on request, so an ordinary test run leaves the tree clean; otherwise
// they go to a temporary folder named in the test log.
var updateScreenshots = flag.Bool("update-screenshots", false, "write browser screenshots to testdata/screenshots")

var screenshotDir = sync.OnceValues(func() (string, error) {
	if *updateScreenshots {
		return filepath.Join("..", "..", "testdata", "screenshots"), nil
	}
	return os.MkdirTemp("", "gatehouse-screenshots-")
})

// The screenshots are taken in a desktop window unless a test emulates a
// phone; narrowWidth is a small phone's.
const (
	desktopWidth, desktopHeight = 1280, 860
	narrowWidth                 = 360
)

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// newChromium starts one headless Chromium for the subtests of t; each
// subtest opens its own tab with newTab.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests do not run with -short")
	}
	path := findChromium()
	if path == "" {
		t.Skip("chromium not found: install Debian's chromium to run the browser tests")
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		chromedp.Cancel(ctx)
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// newTab opens a tab in a browser context of its own, so no cookie is
// shared with another test, at desktop size.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	limited, cancelLimit := context.WithTimeout(browser, 30*time.Second)
	ctx, cancel := chromedp.NewContext(limited, chromedp.WithNewBrowserContext())
	t.Cleanup(func() {
		cancel()
		cancelLimit()
	})
	// The first call opens the tab, which lives as long as the context of
	// that call, so it must not be one of do's short-lived contexts.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(desktopWidth, desktopHeight)); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// stepTimeout bounds each do, so that waiting for something a page never
// shows fails soon and says where the browser is.
const stepTimeout = 10 * time.Second

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		where, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("%v; the browser shows %s", err, where)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %.80s: %v", js, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir, err := screenshotDir()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// mainText is what a person reads in the page's main region: innerText
// leaves out whatever is not rendered.
func mainText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `document.querySelector("main").innerText`)
}

func wantText(t *testing.T, ctx context.Context, want ...string) {
	t.Helper()
	text := mainText(t, ctx)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("page does not show %q; it reads:\n%s", w, text)
		}
	}
}

// signIn uses the login form, then waits for the page after it.
func signIn(t *testing.T, ctx context.Context, username, password, next string) {
	t.Helper()
	do(t, ctx,
		chromedp.WaitVisible(chromedp.ID("login-username")),
		chromedp.SendKeys(chromedp.ID("login-username"), username),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(next)),
	)
}

// testApp is a client app on its own origin: /start sends the browser to
// Gatehouse with PKCE, and /callback hands what came back to the test.
type testApp struct {
	*httptest.Server
	client   storage.Client
	conf     *oauth2.Config
	state    string
	verifier string
	back     chan url.Values
}

func newTestApp(t *testing.T, srv *testServer, reg clients.Registration, scopes ...string) *testApp {
	t.Helper()
	a := &testApp{state: newState(t), verifier: oauth2.GenerateVerifier(), back: make(chan url.Values, 1)}
	mux := http.NewServeMux()
	// /start passes its query on, so a test can add prompt=consent.
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier)}
		for k := range r.URL.Query() {
			opts = append(opts, oauth2.SetAuthURLParam(k, r.URL.Query().Get(k)))
		}
		http.Redirect(w, r, a.conf.AuthCodeURL(a.state, opts...), http.StatusFound)
	})
	// GET for the query response mode, POST for form_post.
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case a.back <- r.Form:
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!DOCTYPE html><title>Back at the app</title><h1>Back at the app</h1>`))
	})
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	reg.RedirectURIs = []string{a.URL + "/callback"}
	var secret string
	a.client, secret = srv.mustCreateClient(t, reg)
	a.conf = srv.oauthConfig(a.client, secret, scopes...)
	return a
}

// returned waits for the browser to arrive at the app's callback.
func (a *testApp) returned(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-a.back:
		return q
	case <-time.After(10 * time.Second):
		t.Fatal("the browser never came back to the app's redirect URI")
		return nil
	}
}

// focusStop is what the page says about the element that has focus after
// a Tab.
type focusStop struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// Visible is whether the element is on screen.
	Visible bool `json:"visible"`
	// Indicated is whether an outline or a box-shadow shows focus, one the
	// element does not have at rest.
	Indicated bool `json:"indicated"`
}

// listControls numbers every control a keyboard user can reach, in
// document order, which is the order Tab should follow on these pages (none
// sets a positive tabindex), and notes how each looks without focus. A
// radio group is one stop, at its checked button; arrow keys move within
// it. It returns the controls' names.
const listControls = `(() => {
	const sel = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), textarea:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex="-1"])';
	const tabStop = e => {
		if (e.type !== "radio") return true;
		const group = [...document.querySelectorAll('input[type=radio][name="' + e.name + '"]')];
		return e === (group.find(r => r.checked) || group[0]);
	};
	window.gatehouseControls = [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length > 0 && tabStop(e));
	window.gatehouseRing = e => {
		const s = getComputedStyle(e);
		const outline = s.outlineStyle === "none" || parseFloat(s.outlineWidth) === 0 ? "none" : s.outlineStyle + " " + s.outlineWidth + " " + s.outlineColor;
		return outline + " / " + s.boxShadow;
	};
	window.gatehouseAtRest = window.gatehouseControls.map(window.gatehouseRing);
	return window.gatehouseControls.map(e => (e.getAttribute("aria-label") || e.innerText || e.id || e.tagName).trim());
})()`

const describeFocus = `(() => {
	const e = document.activeElement;
	const i = window.gatehouseControls.indexOf(e);
	const r = e.getBoundingClientRect();
	const ring = window.gatehouseRing(e);
	return {
		index: i,
		name: (e.getAttribute("aria-label") || e.innerText || e.id || e.tagName).trim(),
		visible: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0,
		indicated: ring !== "none / none" && ring !== window.gatehouseAtRest[i],
	};
})()`

// checkKeyboard presses Tab through the page: every control must get focus
// once, in document order, and show that it has it.
func checkKeyboard(t *testing.T, ctx context.Context) {
	t.Helper()
	controls := eval[[]string](t, ctx, listControls)
	if len(controls) == 0 {
		t.Fatal("no controls on the page")
	}
	for i := range controls {
		do(t, ctx, chromedp.KeyEvent("\t"))
		f := eval[focusStop](t, ctx, describeFocus)
		if f.Index != i {
			t.Fatalf("Tab %d focused %q (control %d), want %q; controls in order: %q", i+1, f.Name, f.Index, controls[i], controls)
		}
		if !f.Visible {
			t.Errorf("%q has focus but is not on screen", f.Name)
		}
		if !f.Indicated {
			t.Errorf("%q has focus but no outline or box-shadow shows it", f.Name)
		}
	}
}

// tabTo presses Tab until the control named name has focus.
func tabTo(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	controls := eval[[]string](t, ctx, listControls)
	for range len(controls) + 1 {
		do(t, ctx, chromedp.KeyEvent("\t"))
		if f := eval[focusStop](t, ctx, describeFocus); f.Name == name {
			return
		}
	}
	t.Fatalf("Tab never reaches %q; the controls are %q", name, controls)
}

// unnamedControls lists form fields without a label and buttons or links
// without a name, as a screen reader would meet them.
const unnamedControls = `(() => {
	const named = e => {
		if ((e.getAttribute("aria-label") || "").trim()) return true;
		const by = e.getAttribute("aria-labelledby");
		if (by && by.split(/\s+/).some(id => (document.getElementById(id)?.textContent || "").trim())) return true;
		if (e.matches("input, textarea, select")) return [...e.labels].some(l => l.textContent.trim());
		return e.textContent.trim() !== "";
	};
	return [...document.querySelectorAll('input:not([type=hidden]), textarea, select, button, a[href]')]
		.filter(e => !named(e))
		.map(e => e.outerHTML.slice(0, 120));
})()`

func checkLabels(t *testing.T, ctx context.Context) {
	t.Helper()
	if bad := eval[[]string](t, ctx, unnamedControls); len(bad) > 0 {
		t.Errorf("controls without an accessible name: %q", bad)
	}
}
