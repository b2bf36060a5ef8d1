package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserDevice drives the /device pages in Chromium: with the keyboard
// alone, the code typed in lower case without the dash, and on a 360 px
// phone screen.
func TestBrowserDevice(t *testing.T) {
	browser := newChromium(t)
	srv := newTestServer(t)
	srv.mustCreateUser(t, "ivan", "ivan's long passphrase")
	cli, _ := srv.mustCreateClient(t, deviceReg("Books CLI"))

	t.Run("keyboard", func(t *testing.T) {
		deviceCode, userCode := mustDeviceCode(t, srv, cli, "openid books:read")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(srv.URL+"/device"))
		signIn(t, ctx, "ivan", "ivan's long passphrase", "#device-user-code")
		wantText(t, ctx, "Connect a device", "Enter the code shown on your TV")
		checkLabels(t, ctx)
		checkKeyboard(t, ctx)

		do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("device-user-code")))
		tabTo(t, ctx, "device-user-code")
		typed := strings.ToLower(strings.ReplaceAll(userCode, "-", ""))
		do(t, ctx, chromedp.KeyEvent(typed+"\r"), chromedp.WaitVisible(chromedp.CSS("form.decision")))
		wantText(t, ctx, "Books CLI", "not to this browser", userCode, "Confirm who you are", "See your books", "Signed in as ivan")
		checkLabels(t, ctx)
		screenshot(t, ctx, "device-consent.png")
		tabTo(t, ctx, "Allow")
		do(t, ctx, chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.Search(`//h1[text()="Device connected"]`)))
		wantText(t, ctx, "You can return to your device")
		screenshot(t, ctx, "device-done.png")

		if resp, m := devicePoll(t, srv, cli, deviceCode); resp.StatusCode != http.StatusOK {
			t.Fatalf("poll after allowing in the browser: %d %s", resp.StatusCode, fmtErr(m))
		}
	})

	t.Run("every control of the consent page by keyboard", func(t *testing.T) {
		_, userCode := mustDeviceCode(t, srv, cli, "books:read")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.Navigate(srv.URL+"/device?user_code="+userCode))
		signIn(t, ctx, "ivan", "ivan's long passphrase", "#device-user-code")
		do(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/device"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("form.decision")))
		checkKeyboard(t, ctx)
	})

	t.Run("narrow screen", func(t *testing.T) {
		_, userCode := mustDeviceCode(t, srv, cli, "openid profile offline_access books:read books:write")
		ctx := newTab(t, browser)
		do(t, ctx, chromedp.EmulateViewport(narrowWidth, 740, chromedp.EmulateMobile), chromedp.Navigate(srv.URL+"/device"))
		signIn(t, ctx, "ivan", "ivan's long passphrase", "#device-user-code")
		checkNoHorizontalScroll(t, ctx, "the code form")
		screenshot(t, ctx, "device-narrow.png")
		do(t, ctx,
			chromedp.SendKeys(chromedp.ID("device-user-code"), "wrong"),
			chromedp.Click(chromedp.CSS(`form[action="/device"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(".alert")),
		)
		wantText(t, ctx, "That code is not valid")
		checkNoHorizontalScroll(t, ctx, "the code form with an error")
		do(t, ctx,
			chromedp.SetValue(chromedp.ID("device-user-code"), userCode),
			chromedp.Click(chromedp.CSS(`form[action="/device"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS("form.decision")),
		)
		checkNoHorizontalScroll(t, ctx, "the device consent page")
		screenshot(t, ctx, "device-consent-narrow.png")
		do(t, ctx, chromedp.Click(chromedp.CSS(`button[name=decision][value=deny]`)), chromedp.WaitVisible(chromedp.Search(`//h1[text()="Request denied"]`)))
		checkNoHorizontalScroll(t, ctx, "the denied page")
	})
}
