package main

import (
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestBrowserTwoStep sets up an authenticator app in Chromium and signs in
// with it, keyboard checked on both pages, then shows both on a phone in
// dark mode.
func TestBrowserTwoStep(t *testing.T) {
	browser := newChromium(t)
	srv, clk := newClockedServer(t)
	srv.mustCreateUser(t, "ada", "analytical engine")
	srv.mustCreateUser(t, "bea", "difference engine")
	ctx := newTab(t, browser)

	do(t, ctx, chromedp.Navigate(srv.URL+"/login"))
	signIn(t, ctx, "ada", "analytical engine", ".tiles")
	do(t, ctx,
		chromedp.Navigate(srv.URL+"/account/security"),
		chromedp.Click(chromedp.CSS(`a[href="/account/totp/setup"]`)),
		chromedp.WaitVisible(chromedp.CSS("img.qr")),
	)
	if !eval[bool](t, ctx, `document.querySelector("img.qr").complete && document.querySelector("img.qr").naturalWidth > 0`) {
		t.Fatal("the QR code did not load (is img-src data: allowed?)")
	}
	wantText(t, ctx, "Set up an authenticator app", "Key, to type instead")
	checkLabels(t, ctx)
	checkKeyboard(t, ctx)
	screenshot(t, ctx, "totp-setup.png")
	key := eval[string](t, ctx, `document.getElementById("totp-secret").value.replaceAll(" ", "")`)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("totp-setup-code"), clk.code(t, key)),
		chromedp.Click(chromedp.CSS(`form[action="/account/totp/setup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
	)
	wantText(t, ctx, "save your recovery codes", "not shown again")
	if n := eval[int](t, ctx, `document.querySelectorAll("#recovery-codes li").length`); n != 10 {
		t.Fatalf("%d recovery codes shown, want 10", n)
	}
	screenshot(t, ctx, "totp-recovery-codes.png")
	do(t, ctx, chromedp.Click(chromedp.CSS(`main a[href="/account/security"]`)), chromedp.WaitVisible(chromedp.ID("recovery-left")))
	wantText(t, ctx, "10 recovery codes left", "Regenerate recovery codes", "Turned on the authenticator app")
	checkLabels(t, ctx)
	screenshot(t, ctx, "security-totp.png")

	do(t, ctx,
		chromedp.Click(chromedp.CSS(".sign-out button")),
		chromedp.WaitVisible(chromedp.CSS(".hero")),
		chromedp.Navigate(srv.URL+"/login"),
	)
	signIn(t, ctx, "ada", "analytical engine", "#login-code")
	attrs := eval[[]string](t, ctx, `(() => { const e = document.getElementById("login-code"); return [e.name, e.inputMode, e.autocomplete] })()`)
	if len(attrs) != 3 || attrs[0] != "code" || attrs[1] != "numeric" || attrs[2] != "one-time-code" {
		t.Fatalf("code field name, inputmode, autocomplete = %q", attrs)
	}
	wantText(t, ctx, "Two-step sign-in", "Use a recovery code")
	checkLabels(t, ctx)
	checkKeyboard(t, ctx)
	screenshot(t, ctx, "login-code.png")
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("login-code"), "12345x"),
		chromedp.Click(chromedp.CSS(`form[action="/login/code"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".alert")),
	)
	wantText(t, ctx, "That code is not right")
	clk.step()
	do(t, ctx,
		chromedp.SetValue(chromedp.ID("login-code"), clk.code(t, key)),
		chromedp.Click(chromedp.CSS(`form[action="/login/code"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".tiles")),
	)

	t.Run("narrow screen in dark mode", func(t *testing.T) {
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.EmulateViewport(narrowWidth, 740, chromedp.EmulateMobile))
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
		do(t, ctx, chromedp.Navigate(srv.URL+"/login"))
		signIn(t, ctx, "bea", "difference engine", ".tiles")
		do(t, ctx, chromedp.Navigate(srv.URL+"/account/totp/setup"), chromedp.WaitVisible(chromedp.CSS("img.qr")))
		checkNoHorizontalScroll(t, ctx, "the setup page")
		screenshot(t, ctx, "totp-setup-narrow-dark.png")

		other := newTab(t, browser)
		do(t, other, chromedp.EmulateViewport(narrowWidth, 740, chromedp.EmulateMobile))
		if _, err := chromedp.Call(other, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
		do(t, other, chromedp.Navigate(srv.URL+"/login"))
		signIn(t, other, "ada", "analytical engine", "#login-code")
		checkNoHorizontalScroll(t, other, "the code page")
		screenshot(t, other, "login-code-narrow-dark.png")
	})
}
