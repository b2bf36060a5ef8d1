package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"gatehouse/clients"
)

// TestBrowser drives the pages in a real Chromium, as a person would: with
// the mouse, with the keyboard only, on a phone and in dark mode.
func TestBrowser(t *testing.T) {
	browser := newChromium(t)
	srv := newTestServer(t)
	dev := srv.mustCreateUser(t, "dana", "dana's long passphrase")
	bookshelf := func(t *testing.T) *testApp {
		return newTestApp(t, srv, clients.Registration{OwnerID: dev.ID, Name: "Bookshelf"}, "openid", "profile", "offline_access", "books:read", "books:write")
	}
	descriptions := []string{"Confirm who you are", "See your username", "Keep access when you're not using the app", "See your books", "Add, change and delete your books"}

	t.Run("register, sign in and allow", func(t *testing.T) {
		app := bookshelf(t)
		ctx := newTab(t, browser)
		do(t, ctx,
			chromedp.Navigate(srv.URL+"/register"),
			chromedp.SendKeys(chromedp.ID("register-username"), "ada"),
			chromedp.SendKeys(chromedp.ID("register-password"), "analytical engine"),
			chromedp.Click(chromedp.CSS(`form[action="/register"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(".tiles")),
		)
		wantText(t, ctx, "Welcome, ada")
		do(t, ctx,
			chromedp.Click(chromedp.CSS(".sign-out button")),
			chromedp.WaitVisible(chromedp.CSS(".hero")),
			chromedp.Navigate(app.URL+"/start"),
			chromedp.WaitVisible(chromedp.ID("login-username")),
		)
		screenshot(t, ctx, "login.png")
		signIn(t, ctx, "ada", "analytical engine", "form.decision")
		redirect := mustParseURL(t, app.conf.RedirectURL)
		wantText(t, ctx, append([]string{"Bookshelf", "Registered by dana", redirect.Host, "Signed in as ada"}, descriptions...)...)
		screenshot(t, ctx, "consent.png")

		do(t, ctx, chromedp.Click(chromedp.CSS(`button[name=decision][value=allow]`)))
		q := app.returned(t)
		if q.Get("state") != app.state || q.Get("code") == "" {
			t.Fatalf("the app got %v, want a code and state %q", q, app.state)
		}
		tok, err := app.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(app.verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if resp, body := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/books with the new token: %d %v", resp.StatusCode, body)
		}
	})

	t.Run("deny", func(t *testing.T) {
		app := bookshelf(t)
		srv.mustCreateUser(t, "bob", "bob's long passphrase")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(app.URL+"/start"))
		signIn(t, ctx, "bob", "bob's long passphrase", "form.decision")
		do(t, ctx, chromedp.Click(chromedp.CSS(`button[name=decision][value=deny]`)))
		q := app.returned(t)
		if q.Get("error") != "access_denied" || q.Get("state") != app.state || q.Has("code") {
			t.Fatalf("the app got %v, want error=access_denied, state %q and no code", q, app.state)
		}
	})

	t.Run("form_post delivers the code with and without JavaScript", func(t *testing.T) {
		app := bookshelf(t)
		srv.mustCreateUser(t, "fay", "fay's long passphrase")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(app.URL+"/start?response_mode=form_post"))
		signIn(t, ctx, "fay", "fay's long passphrase", "form.decision")
		// The page posts itself to the app through app.js, under the CSP.
		do(t, ctx, chromedp.Click(chromedp.CSS(`button[name=decision][value=allow]`)))
		q := app.returned(t)
		if q.Get("state") != app.state || q.Get("code") == "" || q.Get("iss") != srv.URL {
			t.Fatalf("the app got %v, want a posted code, state %q and iss", q, app.state)
		}
		if _, err := app.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(app.verifier)); err != nil {
			t.Fatalf("exchange of the posted code: %v", err)
		}

		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		do(t, ctx,
			chromedp.Navigate(app.URL+"/start?response_mode=form_post&prompt=consent"),
			chromedp.Click(chromedp.CSS(`button[name=decision][value=deny]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[data-autosubmit] button[type=submit]`)),
		)
		wantText(t, ctx, "Returning you to Bookshelf")
		do(t, ctx, chromedp.Click(chromedp.CSS(`form[data-autosubmit] button[type=submit]`)))
		if q := app.returned(t); q.Get("error") != "access_denied" || q.Get("state") != app.state {
			t.Fatalf("without JavaScript the app got %v, want access_denied posted", q)
		}
	})

	t.Run("the console shows a new app's secret once", func(t *testing.T) {
		srv.mustCreateUser(t, "carol", "carol's long passphrase")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(srv.URL+"/login"))
		signIn(t, ctx, "carol", "carol's long passphrase", ".tiles")
		do(t, ctx,
			chromedp.Navigate(srv.URL+"/apps"),
			chromedp.Click(chromedp.CSS(`.empty-state a[href="/apps/new"]`)),
			chromedp.WaitVisible(chromedp.ID("app-name")),
			chromedp.SendKeys(chromedp.ID("app-name"), "Reading List"),
			chromedp.SendKeys(chromedp.ID("app-redirect-uris"), "https://reading-list.example/oauth/callback"),
			chromedp.Click(chromedp.CSS(`form[action="/apps"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.ID("client-secret")),
		)
		wantText(t, ctx, "Reading List", "Copy this secret now. It will not be shown again.", "https://reading-list.example/oauth/callback")
		secret := eval[string](t, ctx, `document.getElementById("client-secret").value`)
		clientID := eval[string](t, ctx, `document.getElementById("client-id").value`)
		if secret == "" || clientID == "" {
			t.Fatalf("client id %q, secret %q: want both shown", clientID, secret)
		}
		screenshot(t, ctx, "apps-created.png")

		// app.js runs under the CSP: it shows the copy button, and the
		// button either copies or selects the secret, and says which.
		do(t, ctx, chromedp.Click(chromedp.CSS(`[data-copy-target="client-secret"]`)))
		status, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector(".secret-notice .copy-status").textContent`))
		if err != nil {
			t.Fatalf("the copy button said nothing: %v", err)
		}
		if !strings.HasPrefix(status, "Copied") && !strings.HasPrefix(status, "Selected") {
			t.Fatalf("the copy button says %q", status)
		}

		// The secret on the page is the one that authenticates the app.
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/revoke", strings.NewReader("token=unknown"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke with the shown secret: %d %s", resp.StatusCode, body)
		}

		do(t, ctx,
			chromedp.Navigate(srv.URL+"/apps/"+url.PathEscape(clientID)),
			chromedp.WaitVisible(chromedp.ID("details-heading")),
		)
		if eval[bool](t, ctx, `document.getElementById("client-secret") !== null || document.documentElement.outerHTML.includes(`+jsString(secret)+`)`) {
			t.Fatal("the secret is on the app's page again")
		}
		wantText(t, ctx, "Reading List")
		if got := eval[string](t, ctx, `document.getElementById("client-id").value`); got != clientID {
			t.Fatalf("the app's page shows client id %q, want %q", got, clientID)
		}
	})

	t.Run("revoking a connection kills its tokens", func(t *testing.T) {
		app := bookshelf(t)
		notes := newTestApp(t, srv, clients.Registration{OwnerID: dev.ID, Name: "Notes"}, "openid")
		srv.mustCreateUser(t, "erin", "erin's long passphrase")
		tok := authorizeOverHTTP(t, srv, app, "erin", "erin's long passphrase")
		authorizeOverHTTP(t, srv, notes, "erin", "erin's long passphrase")
		if resp, body := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/books before revoking: %d %v", resp.StatusCode, body)
		}

		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(srv.URL+"/account/connections"))
		signIn(t, ctx, "erin", "erin's long passphrase", ".connection")
		wantText(t, ctx, append([]string{"Bookshelf", "Notes"}, descriptions...)...)
		screenshot(t, ctx, "connections.png")

		do(t, ctx,
			chromedp.Click(chromedp.CSS(`button[aria-label="Revoke access for Bookshelf"]`)),
			chromedp.WaitNotPresent(chromedp.CSS(`button[aria-label="Revoke access for Bookshelf"]`)),
		)
		wantText(t, ctx, "Notes")
		if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("access token after revoking: %d, want 401", resp.StatusCode)
		}
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, app.client.ID, app.conf.ClientSecret)
		if resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
			t.Fatalf("refresh after revoking: %d %s, want 400 invalid_grant", resp.StatusCode, fmtErr(body))
		}
	})

	t.Run("keyboard and labels", func(t *testing.T) {
		app := bookshelf(t)
		srv.mustCreateUser(t, "frank", "frank's long passphrase")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(srv.URL+"/register"))
		checkLabels(t, ctx)
		checkKeyboard(t, ctx)
		do(t, ctx, chromedp.Navigate(app.URL+"/start"), chromedp.WaitVisible(chromedp.ID("login-username")))
		checkLabels(t, ctx)
		checkKeyboard(t, ctx)

		// Sign in and allow with the keyboard alone.
		do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("login-username")))
		tabTo(t, ctx, "login-username")
		do(t, ctx, chromedp.KeyEvent("frank\tfrank's long passphrase\r"), chromedp.WaitVisible(chromedp.CSS("form.decision")))
		checkLabels(t, ctx)
		checkKeyboard(t, ctx)
		do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("form.decision")))
		tabTo(t, ctx, "Allow")
		do(t, ctx, chromedp.KeyEvent("\r"))
		if q := app.returned(t); q.Get("code") == "" {
			t.Fatalf("allowing with the keyboard sent the app %v, want a code", q)
		}
		// Let the browser finish arriving at the app, or the next
		// navigation aborts that one (net::ERR_ABORTED).
		do(t, ctx, chromedp.WaitVisible(chromedp.Search(`//h1[text()="Back at the app"]`)))

		do(t, ctx, chromedp.Navigate(srv.URL+"/apps/new"), chromedp.WaitVisible(chromedp.ID("app-name")))
		checkLabels(t, ctx)
		checkKeyboard(t, ctx)
	})

	t.Run("narrow screen", func(t *testing.T) {
		app := bookshelf(t)
		user := srv.mustCreateUser(t, "grace", "grace's long passphrase")
		srv.mustCreateClient(t, clients.Registration{OwnerID: user.ID, Name: "A reading tracker with a rather long name for a small screen", RedirectURIs: []string{"https://reading-tracker.example.com/oauth2/callback/after-a-very-long-path-segment"}})
		authorizeOverHTTP(t, srv, app, "grace", "grace's long passphrase")

		ctx := newTab(t, browser)
		do(t, ctx, chromedp.EmulateViewport(narrowWidth, 740, chromedp.EmulateMobile))
		visit := func(u, ready, shot string) {
			t.Helper()
			do(t, ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(ready)))
			checkNoHorizontalScroll(t, ctx, u)
			if shot != "" {
				screenshot(t, ctx, shot)
			}
		}
		visit(srv.URL+"/register", "#register-username", "")
		visit(srv.URL+"/login", "#login-username", "login-narrow.png")
		signIn(t, ctx, "grace", "grace's long passphrase", ".tiles")
		checkNoHorizontalScroll(t, ctx, "the home page")
		visit(app.URL+"/start?prompt=consent", "form.decision", "consent-narrow.png")
		visit(srv.URL+"/apps", ".app-summary", "apps-narrow.png")
		visit(srv.URL+"/account/connections", ".connection", "connections-narrow.png")
		visit(srv.URL+"/apps/new", "#app-name", "")
		do(t, ctx,
			chromedp.SendKeys(chromedp.ID("app-name"), "Pocket Shelf"),
			chromedp.SendKeys(chromedp.ID("app-redirect-uris"), "https://pocket-shelf.example/oauth/callback"),
			chromedp.Click(chromedp.CSS(`form[action="/apps"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.ID("client-secret")),
		)
		checkNoHorizontalScroll(t, ctx, "a new app's page")
		screenshot(t, ctx, "apps-created-narrow.png")
	})

	t.Run("dark mode", func(t *testing.T) {
		app := bookshelf(t)
		srv.mustCreateUser(t, "heidi", "heidi's long passphrase")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(app.URL+"/start"))
		signIn(t, ctx, "heidi", "heidi's long passphrase", "form.decision")
		light := eval[string](t, ctx, `getComputedStyle(document.body).backgroundColor`)
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
		dark := eval[string](t, ctx, `getComputedStyle(document.body).backgroundColor`)
		if dark == light {
			t.Fatalf("the background is %s in light and dark mode alike", light)
		}
		screenshot(t, ctx, "consent-dark.png")
	})

	t.Run("a broken authorization request", func(t *testing.T) {
		app := bookshelf(t)
		ctx := newTab(t, browser)
		broken := srv.URL + "/oauth2/authorize?" + url.Values{
			"response_type": {"code"},
			"client_id":     {app.client.ID},
			"redirect_uri":  {"https://attacker.example/callback"},
			"state":         {app.state},
		}.Encode()
		do(t, ctx, chromedp.Navigate(broken), chromedp.WaitVisible(chromedp.CSS(".developer-note")))
		if u := eval[string](t, ctx, `location.href`); u != broken {
			t.Fatalf("the browser went on to %s", u)
		}
		wantText(t, ctx, "This sign-in request can't continue", "redirect_uri")
		screenshot(t, ctx, "error.png")
	})

	// A page on another origin puts Gatehouse's login page and, as a
	// control, a page that allows framing in iframes; Chromium must load
	// the control and replace Gatehouse's page with its error page.
	t.Run("framed by another origin", func(t *testing.T) {
		app := bookshelf(t)
		framer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!DOCTYPE html><title>Win a prize</title><iframe name="control" src="%s/callback"></iframe><iframe name="gatehouse" src="%s/login"></iframe>`, app.URL, srv.URL)
		}))
		defer framer.Close()
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(framer.URL))
		tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		frames := map[string]*cdp.Frame{}
		for _, c := range tree.FrameTree.ChildFrames {
			frames[c.Frame.Name] = c.Frame
		}
		if f := frames["control"]; f == nil || f.URL != app.URL+"/callback" {
			t.Fatalf("the control frame did not load: %+v", f)
		}
		f := frames["gatehouse"]
		if f == nil {
			t.Fatal("no frame for Gatehouse's login page")
		}
		if f.URL == srv.URL+"/login" || f.UnreachableURL != srv.URL+"/login" {
			t.Fatalf("Gatehouse's login page was framed: the frame shows %s (unreachable: %q)", f.URL, f.UnreachableURL)
		}
	})
}

// checkNoHorizontalScroll fails when the page is wider than the window,
// which on a phone means sideways scrolling.
func checkNoHorizontalScroll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > narrowWidth {
		t.Errorf("%s is %d px wide in a %d px window", what, w, narrowWidth)
	}
}

// authorizeOverHTTP gets username's tokens for app without a browser.
func authorizeOverHTTP(t *testing.T, srv *testServer, app *testApp, username, password string) *oauth2.Token {
	t.Helper()
	b := newBrowser(t, srv.URL)
	back := b.signInAndAuthorize(app.conf.AuthCodeURL(app.state, oauth2.S256ChallengeOption(app.verifier)), username, password, "allow")
	tok, err := app.conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(app.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestPagesRefuseOtherSites needs no browser: the consent form refuses a
// post from another site, and the pages where people sign in and decide
// tell browsers never to frame them or leak their URLs.
func TestPagesRefuseOtherSites(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "openid", "books:read")
	authURL := conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	b := newBrowser(t, srv.URL)
	resp, body := b.get("/login")
	wantStatus(t, resp, body, http.StatusOK)
	wantPageHeaders(t, "login page", resp)
	resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.get(authURL)
	wantStatus(t, resp, body, http.StatusOK)
	wantPageHeaders(t, "consent page", resp)
	action := consentAction(t, body)

	for _, tc := range []struct {
		name   string
		header string
		value  string
	}{
		{"foreign Origin", "Origin", "https://evil.example"},
		{"cross-site fetch", "Sec-Fetch-Site", "cross-site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+action, strings.NewReader("decision=allow"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(tc.header, tc.value)
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, resp, readBody(t, resp), http.StatusForbidden)
		})
	}

	// The same post from the page itself goes through.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+action, strings.NewReader("decision=allow"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, readBody(t, resp), http.StatusSeeOther)
	if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("code") == "" {
		t.Fatalf("a same-origin consent got %v, want a code", q)
	}
}

func wantPageHeaders(t *testing.T, page string, resp *http.Response) {
	t.Helper()
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("%s: X-Frame-Options %q, want DENY", page, got)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy %q lacks frame-ancestors 'none'", page, csp)
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("%s: Referrer-Policy %q, want no-referrer", page, got)
	}
}
