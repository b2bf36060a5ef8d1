package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserEmail walks the email pages in Chromium: registering with an
// address, confirming it from the mail, the settings page, and a password
// reset from the login page's link.
func TestBrowserEmail(t *testing.T) {
	browser := newChromium(t)
	srv, smtp := newMailServer(t)
	ctx := newTab(t, browser)

	do(t, ctx,
		chromedp.Navigate(srv.URL+"/register"),
		chromedp.SendKeys(chromedp.ID("register-username"), "ada"),
		chromedp.SendKeys(chromedp.ID("register-password"), "analytical engine"),
		chromedp.SendKeys(chromedp.ID("register-email"), "ada@example.com"),
		chromedp.Click(chromedp.CSS(`form[action="/register"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".tiles")),
	)
	link := mailedLink(t, smtp.Next(t), "/email/verify")
	do(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`form[action="/email/verify"]`)))
	wantText(t, ctx, "Confirm your email address", "ada@example.com", "ada")
	checkLabels(t, ctx)
	screenshot(t, ctx, "email-confirm.png")
	do(t, ctx,
		chromedp.Click(chromedp.CSS(`form[action="/email/verify"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`main a[href="/"]`)),
	)
	wantText(t, ctx, "Address confirmed", "ada@example.com")

	do(t, ctx, chromedp.Navigate(srv.URL+"/account/email"), chromedp.WaitVisible(chromedp.ID("email-new")))
	wantText(t, ctx, "ada@example.com", "Verified", "New email address")
	checkLabels(t, ctx)
	screenshot(t, ctx, "email-settings.png")

	do(t, ctx,
		chromedp.Click(chromedp.CSS(".sign-out button")),
		chromedp.WaitVisible(chromedp.CSS(".hero")),
		chromedp.Navigate(srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-username")),
		chromedp.Click(chromedp.CSS(`a[href="/password/forgot"]`)),
		chromedp.WaitVisible(chromedp.ID("forgot-email")),
	)
	checkLabels(t, ctx)
	checkKeyboard(t, ctx)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("forgot-email"), "ada@example.com"),
		chromedp.Click(chromedp.CSS(`form[action="/password/forgot"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[role=status]`)),
	)
	wantText(t, ctx, "ada@example.com", "30 minutes")
	screenshot(t, ctx, "password-forgot.png")

	link = mailedLink(t, smtp.Next(t), "/password/reset")
	do(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("reset-password")))
	wantText(t, ctx, "Choose a new password", "ada")
	checkLabels(t, ctx)
	screenshot(t, ctx, "password-reset.png")
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("reset-password"), "difference engine"),
		chromedp.Click(chromedp.CSS(`form[action="/password/reset"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`main a[href="/login"]`)),
	)
	wantText(t, ctx, "Password changed")
	do(t, ctx, chromedp.Click(chromedp.CSS(`main a[href="/login"]`)))
	signIn(t, ctx, "ada", "difference engine", ".tiles")
}
