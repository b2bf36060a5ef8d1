package templates

import (
	"context"
	"io"
	"testing"
)

// BenchmarkConsent renders the consent page a first-time user sees.
func BenchmarkConsent(b *testing.B) {
	v := ConsentView{
		Page:         Page{Title: "Allow My App?", User: "alice", CSS: "/static/app.0123abcd.css", JS: "/static/app.0123abcd.js", Icon: "/static/icon.0123abcd.svg"},
		ClientName:   "My App",
		ClientOwner:  "bob",
		RedirectHost: "app.example:8443",
		Scopes: []Scope{
			{Name: "openid", Description: "Confirm who you are"},
			{Name: "offline_access", Description: "Stay connected"},
			{Name: "books:read", Description: "Read your books"},
			{Name: "books:write", Description: "Add, change and delete your books"},
		},
		Action:         "/oauth2/authorize?response_type=code&client_id=abc&redirect_uri=https%3A%2F%2Fapp.example%3A8443%2Fcb&scope=openid+books%3Aread&state=xyz",
		SwitchReturnTo: "/login?return_to=%2Foauth2%2Fauthorize%3Fresponse_type%3Dcode",
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := Consent(v).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
