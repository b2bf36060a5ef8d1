package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/clients"
)

// addAuthenticator gives the tab a platform authenticator of Chromium's
// DevTools that holds discoverable credentials and verifies its user (as
// a fingerprint reader would) without anyone touching it.
func addAuthenticator(t *testing.T, ctx context.Context) webauthn.AuthenticatorID {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enable WebAuthn: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("add a virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

// TestBrowserPasskeys adds a passkey on the security page, signs out, signs
// in with it, and uses it inside an authorization whose ID token says how
// the user signed in.
func TestBrowserPasskeys(t *testing.T) {
	browser := newChromium(t)
	// WebAuthn needs a host name: the issuer is http://localhost:PORT.
	srv := newTestServer(t, "--addr", "localhost:0")
	if !strings.HasPrefix(srv.URL, "http://localhost:") {
		t.Fatalf("issuer %s, want http://localhost:PORT", srv.URL)
	}
	dev := srv.mustCreateUser(t, "dana", "dana's long passphrase")
	srv.mustCreateUser(t, "ada", "analytical engine")
	ctx := newTab(t, browser)
	authenticator := addAuthenticator(t, ctx)

	do(t, ctx, chromedp.Navigate(srv.URL+"/login"))
	signIn(t, ctx, "ada", "analytical engine", ".tiles")
	do(t, ctx,
		chromedp.Navigate(srv.URL+"/account/security"),
		chromedp.WaitVisible(chromedp.CSS("[data-passkey-add-button]")),
	)
	wantText(t, ctx, "Passkeys", "No passkeys yet.")
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("passkey-new-name"), "Test laptop"),
		chromedp.Click(chromedp.CSS("[data-passkey-add-button]")),
		chromedp.WaitVisible(chromedp.CSS(".passkey-list .passkey")),
	)
	wantText(t, ctx, "Test laptop", "This device only", "Never used", "Added a passkey")
	creds, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authenticator})
	if err != nil || len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential {
		t.Fatalf("the authenticator holds %v (%v), want one discoverable credential", creds, err)
	}
	checkLabels(t, ctx)
	screenshot(t, ctx, "security-passkeys.png")
	checkKeyboard(t, ctx)

	// Chromium's virtual authenticator answers the login page's
	// conditional request (the username field's autofill) at once: the
	// page signs in as soon as it loads.
	do(t, ctx,
		chromedp.Click(chromedp.CSS(".sign-out button")),
		chromedp.WaitVisible(chromedp.CSS(".hero")),
		chromedp.Navigate(srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(".tiles")),
		chromedp.Navigate(srv.URL+"/account/security"),
		chromedp.WaitVisible(chromedp.ID("passkeys")),
	)
	wantText(t, ctx, "Signed in with a passkey", "Last used")

	// A browser without conditional mediation gets only the button.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);`,
	}); err != nil {
		t.Fatal(err)
	}
	// Inside an authorization: the login page keeps return_to, and the ID
	// token says a hardware-bound key with user verification was used.
	app := newTestApp(t, srv, clients.Registration{OwnerID: dev.ID, Name: "Bookshelf"}, "openid", "profile")
	do(t, ctx,
		chromedp.Click(chromedp.CSS(".sign-out button")),
		chromedp.WaitVisible(chromedp.CSS(".hero")),
		chromedp.Navigate(app.URL+"/start"),
		chromedp.WaitVisible(chromedp.CSS("[data-passkey-login-button]")),
	)
	if got := eval[string](t, ctx, `document.getElementById("login-username").autocomplete`); got != "username webauthn" {
		t.Errorf("username autocomplete = %q, want %q", got, "username webauthn")
	}
	checkLabels(t, ctx)
	screenshot(t, ctx, "login-passkey.png")
	checkKeyboard(t, ctx)
	do(t, ctx,
		chromedp.Click(chromedp.CSS("[data-passkey-login-button]")),
		chromedp.WaitVisible(chromedp.CSS("form.decision")),
	)
	wantText(t, ctx, "Bookshelf", "Signed in as ada")
	do(t, ctx, chromedp.Click(chromedp.CSS(`button[name=decision][value=allow]`)))
	q := app.returned(t)
	tok, err := app.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(app.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	provider, err := oidc.NewProvider(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := provider.Verifier(&oidc.Config{ClientID: app.client.ID}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(claims.AMR, []string{"hwk", "mfa"}) {
		t.Fatalf("amr %q, want [hwk mfa] after a passkey sign-in", claims.AMR)
	}
}
