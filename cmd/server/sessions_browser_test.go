package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// sectionScreenshot keeps a picture of one element of the page, as
// screenshot does of the whole.
func sectionScreenshot(t *testing.T, ctx context.Context, sel, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot %s of %s: %v", name, sel, err)
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

const (
	sessionsSection = `section[aria-labelledby="sessions-heading"]`
	passwordSection = `section[aria-labelledby="password-heading"]`
)

// TestBrowserSessions: two browser contexts signed in to one account, as
// two devices would be. "Sign out everywhere else" in the first ends the
// second at its next request; the password change form works with the
// keyboard; the page fits a phone and has a dark scheme.
func TestBrowserSessions(t *testing.T) {
	browser := newChromium(t)
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)
	laptop, phone := newTab(t, browser), newTab(t, browser)
	if _, err := chromedp.Call(phone, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: safariOnIPhone}); err != nil {
		t.Fatal(err)
	}
	for _, ctx := range []context.Context{phone, laptop} {
		do(t, ctx, chromedp.Navigate(srv.URL+"/login"))
		signIn(t, ctx, "alice", alicePassword, ".tiles")
	}

	do(t, laptop, chromedp.Navigate(srv.URL+"/account/security"), chromedp.WaitVisible(chromedp.CSS(sessionsSection)))
	wantText(t, laptop, "Signed-in sessions", "Headless Chrome on Linux", "This browser", "Safari on iOS", "Sign out everywhere else", "Change password")
	checkLabels(t, laptop)
	screenshot(t, laptop, "security.png")
	sectionScreenshot(t, laptop, sessionsSection, "security-sessions.png")
	checkKeyboard(t, laptop)

	tabTo(t, laptop, "Sign out everywhere else")
	do(t, laptop,
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(sessionsSection+" .flash")),
	)
	wantText(t, laptop, "Your one other session was signed out.", "No other browser is signed in.")
	if strings.Contains(mainText(t, laptop), "Safari on iOS") {
		t.Error("the phone's session is still listed after Sign out everywhere else")
	}
	do(t, phone, chromedp.Navigate(srv.URL+"/apps"), chromedp.WaitVisible(chromedp.ID("login-username")))
	if u := eval[string](t, phone, `location.pathname`); u != "/login" {
		t.Errorf("the phone went to %s after being signed out, want /login", u)
	}

	t.Run("password change", func(t *testing.T) {
		do(t, laptop, chromedp.Navigate(srv.URL+"/account/security"), chromedp.WaitVisible(chromedp.ID("password-current")))
		tabTo(t, laptop, "password-current")
		do(t, laptop,
			chromedp.KeyEvent("wrong password"),
			chromedp.KeyEvent("\t"),
			chromedp.KeyEvent("a brand new passphrase"),
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS(passwordSection+" .alert")),
		)
		wantText(t, laptop, "Your current password is not right.")
		if invalid := eval[string](t, laptop, `document.getElementById("password-current").getAttribute("aria-invalid")`); invalid != "true" {
			t.Errorf("the current password field has aria-invalid=%q after it was wrong", invalid)
		}
		sectionScreenshot(t, laptop, passwordSection, "security-password-error.png")
		do(t, laptop,
			chromedp.SendKeys(chromedp.ID("password-current"), alicePassword),
			chromedp.SendKeys(chromedp.ID("password-new"), "a brand new passphrase"),
			chromedp.Click(chromedp.CSS(`form[action="/account/password"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(passwordSection+" .flash")),
		)
		wantText(t, laptop, "Your password is changed.")
		sectionScreenshot(t, laptop, passwordSection, "security-password.png")
		do(t, phone, chromedp.Navigate(srv.URL+"/login"))
		signIn(t, phone, "alice", "a brand new passphrase", ".tiles")
	})

	t.Run("narrow screen", func(t *testing.T) {
		do(t, phone,
			chromedp.EmulateViewport(narrowWidth, 740, chromedp.EmulateMobile),
			chromedp.Navigate(srv.URL+"/account/security"),
			chromedp.WaitVisible(chromedp.CSS(sessionsSection)),
		)
		checkNoHorizontalScroll(t, phone, "the security page")
		screenshot(t, phone, "security-narrow.png")
	})

	t.Run("dark mode", func(t *testing.T) {
		if _, err := chromedp.Call(laptop, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
		do(t, laptop, chromedp.Navigate(srv.URL+"/account/security"), chromedp.WaitVisible(chromedp.CSS(sessionsSection)))
		bg := eval[string](t, laptop, `getComputedStyle(document.querySelector(".security-section")).backgroundColor`)
		if bg == "rgb(255, 255, 255)" {
			t.Errorf("the sections stay white in dark mode")
		}
		sectionScreenshot(t, laptop, sessionsSection, "security-sessions-dark.png")
	})
}
