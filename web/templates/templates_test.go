package templates

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"
)

const (
	hostileName = `<script>alert(1)</script>`
	hostileUser = `"><img src=x onerror=alert(2)>`
)

var (
	created = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

	signedIn  = Page{Title: "Page", User: "alice", CSS: "/static/app.0123abcd.css", JS: "/static/app.4567ef01.js", Icon: "/static/icon.89abcdef.svg"}
	signedOut = Page{Title: "Page", CSS: "/static/app.0123abcd.css", JS: "/static/app.4567ef01.js"}

	scopes = []Scope{
		{Name: "openid", Description: "Confirm who you are"},
		{Name: "books:read", Description: "Read your books"},
	}

	confidentialApp = AppSummary{
		ClientID:     "c_conf",
		Name:         "Bookshelf",
		RedirectURIs: []string{"https://bookshelf.example/cb", "http://127.0.0.1/cb"},
		CreatedAt:    created,
	}
	publicApp = AppSummary{
		ClientID:     "c_pub",
		Name:         "Reader",
		Public:       true,
		RedirectURIs: []string{"com.example.reader:/cb"},
		CreatedAt:    created,
	}
)

// pages has one representative view of every component; the checks that
// hold for every page run over all of them.
var pages = []struct {
	name string
	c    templ.Component
}{
	{"home signed in", Home(HomeView{Page: signedIn})},
	{"home signed out", Home(HomeView{Page: signedOut, RegistrationOpen: true})},
	{"login", Login(LoginView{Page: signedOut, Username: "alice", ReturnTo: "/oauth2/authorize?a=1&b=2", Error: "Invalid username or password", RegistrationOpen: true})},
	{"register", Register(RegisterView{Page: signedOut, Username: "bob", ReturnTo: "/apps", Error: "That username is taken"})},
	{"consent", Consent(ConsentView{Page: signedIn, ClientName: "Bookshelf", ClientOwner: "bob", RedirectHost: "bookshelf.example", Scopes: scopes, Action: "/oauth2/authorize?client_id=c&state=s", SwitchReturnTo: "/oauth2/authorize?client_id=c"})},
	{"error", Error(ErrorView{Page: signedOut, Heading: "Cannot continue", Message: "The link is broken.", Detail: "unknown client_id"})},
	{"apps", Apps(AppsView{Page: signedIn, Apps: []AppSummary{confidentialApp, publicApp}})},
	{"apps empty", Apps(AppsView{Page: signedIn})},
	{"new app", AppForm(AppFormView{Page: signedIn, Name: "Bookshelf", RedirectURIs: "https://bookshelf.example/cb", Scope: "openid", Error: "bad redirect URI"})},
	{"edit app", AppForm(AppFormView{Page: signedIn, ClientID: "c_conf", Name: "Bookshelf", RedirectURIs: "https://bookshelf.example/cb"})},
	{"app with secret", App(AppView{Page: signedIn, App: confidentialApp, Scopes: scopes, GrantTypes: []string{"authorization_code", "refresh_token"}, Secret: "s3cret", RedirectURIs: "https://bookshelf.example/cb", Error: "name is required"})},
	{"public app", App(AppView{Page: signedIn, App: publicApp, GrantTypes: []string{"authorization_code"}, RedirectURIs: "com.example.reader:/cb"})},
	{"connections", Connections(ConnectionsView{Page: signedIn, Connections: []Connection{{ClientID: "c_conf", ClientName: "Bookshelf", Scopes: scopes, GrantedAt: created}}})},
	{"connections empty", Connections(ConnectionsView{Page: signedIn})},
	{"form post", FormPost(FormPostView{Page: signedIn, ClientName: "Bookshelf", Action: "https://bookshelf.example/cb?x=1", Fields: []FormField{{"code", "c0de"}, {"state", "st4te"}}})},
	{"not found", NotFound(signedOut)},
}

func mustRender(t *testing.T, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatalf("render: %v", err)
	}
	return b.String()
}

func mustParse(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

func render(t *testing.T, c templ.Component) (string, *html.Node) {
	t.Helper()
	s := mustRender(t, c)
	return s, mustParse(t, s)
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func attrOf(n *html.Node, key string) string {
	v, _ := attr(n, key)
	return v
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var found []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			found = append(found, d)
		}
	}
	return found
}

func elements(n *html.Node, tag string) []*html.Node {
	return findAll(n, func(d *html.Node) bool { return d.Data == tag })
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// formWithAction returns the form whose parsed action is exactly action.
func formWithAction(t *testing.T, doc *html.Node, action string) *html.Node {
	t.Helper()
	forms := findAll(doc, func(n *html.Node) bool { return n.Data == "form" && attrOf(n, "action") == action })
	if len(forms) != 1 {
		t.Fatalf("want one form with action %q, got %d", action, len(forms))
	}
	if m := attrOf(forms[0], "method"); m != "post" {
		t.Errorf("form %q: method %q, want post", action, m)
	}
	return forms[0]
}

// fieldNames lists the names of a form's inputs, textareas and buttons.
func fieldNames(form *html.Node) map[string]bool {
	names := map[string]bool{}
	for _, n := range findAll(form, func(n *html.Node) bool {
		return n.Data == "input" || n.Data == "textarea" || n.Data == "button"
	}) {
		if name, ok := attr(n, "name"); ok {
			names[name] = true
		}
	}
	return names
}

func wantFields(t *testing.T, form *html.Node, want ...string) {
	t.Helper()
	got := fieldNames(form)
	for _, name := range want {
		if !got[name] {
			t.Errorf("form %q has no field %q (has %v)", attrOf(form, "action"), name, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("form %q has fields %v, want exactly %v", attrOf(form, "action"), got, want)
	}
}

func byID(doc *html.Node, id string) *html.Node {
	found := findAll(doc, func(n *html.Node) bool { return attrOf(n, "id") == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

func TestEveryPage(t *testing.T) {
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			raw, doc := render(t, p.c)

			if !strings.HasPrefix(strings.ToLower(raw), "<!doctype html>") {
				t.Errorf("page does not start with a doctype: %.40q", raw)
			}
			if h := elements(doc, "html"); len(h) != 1 || attrOf(h[0], "lang") != "en" {
				t.Error(`want <html lang="en">`)
			}
			if len(findAll(doc, func(n *html.Node) bool { return n.Data == "meta" && attrOf(n, "name") == "viewport" })) != 1 {
				t.Error("no meta viewport")
			}
			if len(elements(doc, "main")) != 1 || attrOf(elements(doc, "main")[0], "id") != "main" {
				t.Error(`want one <main id="main">`)
			}
			if skip := findAll(doc, func(n *html.Node) bool { return n.Data == "a" && attrOf(n, "href") == "#main" }); len(skip) != 1 {
				t.Error("no skip link to #main")
			}
			if len(elements(doc, "h1")) != 1 {
				t.Errorf("want one h1, got %d", len(elements(doc, "h1")))
			}

			for _, s := range elements(doc, "script") {
				if src, ok := attr(s, "src"); !ok || src == "" || s.FirstChild != nil {
					t.Error("inline <script>: the CSP allows only script files")
				}
			}
			if len(elements(doc, "style")) > 0 {
				t.Error("<style> element: the CSP allows only the stylesheet file")
			}
			for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
				for _, a := range n.Attr {
					if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
						t.Errorf("<%s %s=%q>: the CSP blocks inline styles and handlers", n.Data, a.Key, a.Val)
					}
				}
			}

			ids := map[string]bool{}
			for _, n := range findAll(doc, func(n *html.Node) bool { _, ok := attr(n, "id"); return ok }) {
				id := attrOf(n, "id")
				if ids[id] {
					t.Errorf("duplicate id %q", id)
				}
				ids[id] = true
			}

			for _, l := range elements(doc, "label") {
				target := byID(doc, attrOf(l, "for"))
				if target == nil || (target.Data != "input" && target.Data != "textarea") {
					t.Errorf("label %q: for=%q names no input", text(l), attrOf(l, "for"))
				}
			}
			for _, in := range findAll(doc, func(n *html.Node) bool {
				return (n.Data == "input" && attrOf(n, "type") != "hidden") || n.Data == "textarea"
			}) {
				id := attrOf(in, "id")
				labels := findAll(doc, func(n *html.Node) bool { return n.Data == "label" && attrOf(n, "for") == id })
				if id == "" || len(labels) != 1 {
					t.Errorf("input %q (id %q) has %d labels, want 1", attrOf(in, "name"), id, len(labels))
				}
				for _, ref := range strings.Fields(attrOf(in, "aria-describedby")) {
					if byID(doc, ref) == nil {
						t.Errorf("input %q: aria-describedby names missing id %q", id, ref)
					}
				}
			}

			for _, f := range elements(doc, "form") {
				if attrOf(f, "method") != "post" {
					t.Errorf("form %q: method %q, want post", attrOf(f, "action"), attrOf(f, "method"))
				}
			}
			for _, b := range elements(doc, "button") {
				if _, ok := attr(b, "type"); !ok {
					t.Errorf("button %q has no type", text(b))
				}
			}
			for _, b := range findAll(doc, func(n *html.Node) bool { _, ok := attr(n, "data-copy-target"); return ok }) {
				if byID(doc, attrOf(b, "data-copy-target")) == nil {
					t.Errorf("copy button targets missing id %q", attrOf(b, "data-copy-target"))
				}
			}
		})
	}
}

func TestLayout(t *testing.T) {
	t.Run("signed in", func(t *testing.T) {
		_, doc := render(t, Home(HomeView{Page: signedIn}))
		nav := elements(doc, "nav")[0]
		for _, href := range []string{"/", "/apps", "/account/connections"} {
			if len(findAll(nav, func(n *html.Node) bool { return n.Data == "a" && attrOf(n, "href") == href })) != 1 {
				t.Errorf("nav has no link to %s", href)
			}
		}
		logout := formWithAction(t, doc, "/logout")
		if !strings.Contains(text(logout), "Sign out") {
			t.Errorf("logout form says %q", text(logout))
		}
		if current := findAll(nav, func(n *html.Node) bool { return attrOf(n, "aria-current") == "page" }); len(current) != 1 || attrOf(current[0], "href") != "/" {
			t.Error("Home is not marked as the current page")
		}
		links := map[string]string{}
		for _, l := range elements(doc, "link") {
			links[attrOf(l, "rel")] = attrOf(l, "href")
		}
		if links["stylesheet"] != signedIn.CSS || links["icon"] != signedIn.Icon {
			t.Errorf("head links %v", links)
		}
		if s := elements(doc, "script"); len(s) != 1 || attrOf(s[0], "src") != signedIn.JS {
			t.Error("script is not the page's JS")
		}
		if got := text(elements(doc, "title")[0]); got != "Page · Gatehouse" {
			t.Errorf("title %q", got)
		}
	})
	t.Run("signed out", func(t *testing.T) {
		_, doc := render(t, Home(HomeView{Page: signedOut}))
		nav := elements(doc, "nav")[0]
		for _, href := range []string{"/login", "/register"} {
			if len(findAll(nav, func(n *html.Node) bool { return n.Data == "a" && attrOf(n, "href") == href })) != 1 {
				t.Errorf("nav has no link to %s", href)
			}
		}
		if len(findAll(doc, func(n *html.Node) bool { return n.Data == "form" })) != 0 {
			t.Error("signed-out home has a form (sign out?)")
		}
		if len(findAll(doc, func(n *html.Node) bool { return n.Data == "link" && attrOf(n, "rel") == "icon" })) != 0 {
			t.Error("icon link without an icon URL")
		}
	})
	t.Run("flash", func(t *testing.T) {
		p := signedIn
		p.Flash = "App deleted"
		_, doc := render(t, Apps(AppsView{Page: p}))
		status := findAll(doc, func(n *html.Node) bool { return attrOf(n, "role") == "status" && text(n) == "App deleted" })
		if len(status) != 1 {
			t.Error("flash not shown as a status message")
		}
	})
}

func TestLogin(t *testing.T) {
	v := LoginView{Page: signedOut, Username: "alice", ReturnTo: "/oauth2/authorize?a=1&b=2", Error: "Invalid username or password", RegistrationOpen: true}
	_, doc := render(t, Login(v))
	form := formWithAction(t, doc, "/login")
	wantFields(t, form, "username", "password", "return_to")

	user, pass := byID(doc, "login-username"), byID(doc, "login-password")
	if attrOf(user, "autocomplete") != "username" || attrOf(user, "value") != "alice" {
		t.Errorf("username input %v", user.Attr)
	}
	if attrOf(pass, "autocomplete") != "current-password" || attrOf(pass, "type") != "password" {
		t.Errorf("password input %v", pass.Attr)
	}
	if _, ok := attr(pass, "value"); ok {
		t.Error("password is echoed back")
	}
	hidden := findAll(form, func(n *html.Node) bool { return attrOf(n, "name") == "return_to" })[0]
	if attrOf(hidden, "type") != "hidden" || attrOf(hidden, "value") != v.ReturnTo {
		t.Errorf("return_to %v", hidden.Attr)
	}

	alert := findAll(doc, func(n *html.Node) bool { return attrOf(n, "role") == "alert" })
	if len(alert) != 1 || text(alert[0]) != v.Error {
		t.Fatalf("want one alert saying %q", v.Error)
	}
	if attrOf(user, "aria-invalid") != "true" || !strings.Contains(attrOf(user, "aria-describedby"), attrOf(alert[0], "id")) {
		t.Error("username is not tied to the error")
	}

	register := findAll(doc, func(n *html.Node) bool {
		return n.Data == "a" && strings.HasPrefix(attrOf(n, "href"), "/register?")
	})
	if len(register) != 1 || attrOf(register[0], "href") != "/register?return_to=%2Foauth2%2Fauthorize%3Fa%3D1%26b%3D2" {
		t.Errorf("want a register link keeping return_to, got %d", len(register))
	}

	t.Run("registration closed", func(t *testing.T) {
		_, doc := render(t, Login(LoginView{Page: signedOut}))
		if len(findAll(elements(doc, "main")[0], func(n *html.Node) bool { return strings.HasPrefix(attrOf(n, "href"), "/register") })) != 0 {
			t.Error("register link shown while registration is closed")
		}
		if len(findAll(doc, func(n *html.Node) bool { return attrOf(n, "role") == "alert" })) != 0 {
			t.Error("alert shown without an error")
		}
	})
}

func TestRegister(t *testing.T) {
	_, doc := render(t, Register(RegisterView{Page: signedOut, Username: "bob", ReturnTo: "/apps", Error: "That username is taken"}))
	form := formWithAction(t, doc, "/register")
	wantFields(t, form, "username", "password", "email", "return_to")
	if attrOf(byID(doc, "register-password"), "autocomplete") != "new-password" {
		t.Error("password is not autocomplete=new-password")
	}
	if attrOf(byID(doc, "register-username"), "value") != "bob" {
		t.Error("username not echoed")
	}
	for id, want := range map[string]string{"register-username-hint": "3 to 32", "register-password-hint": "8 to 128"} {
		if n := byID(doc, id); n == nil || !strings.Contains(text(n), want) {
			t.Errorf("hint %s does not mention %q", id, want)
		}
	}
	if a := findAll(doc, func(n *html.Node) bool { return attrOf(n, "role") == "alert" }); len(a) != 1 {
		t.Error("error not shown")
	}
	if len(findAll(doc, func(n *html.Node) bool { return attrOf(n, "href") == "/login?return_to=%2Fapps" })) != 1 {
		t.Error("no sign-in link keeping return_to")
	}
}

func TestConsent(t *testing.T) {
	v := ConsentView{
		Page:           Page{User: hostileUser},
		ClientName:     hostileName,
		ClientOrigin:   "cli",
		RedirectHost:   "bookshelf.example",
		Scopes:         []Scope{{Name: "books:read", Description: "Read your books"}},
		Action:         "/oauth2/authorize?client_id=c&redirect_uri=https%3A%2F%2Fbookshelf.example%2Fcb&state=x%26y",
		SwitchReturnTo: "/oauth2/authorize?client_id=c&state=x",
	}
	raw, doc := render(t, Consent(v))

	if strings.Contains(raw, hostileName) || strings.Contains(raw, "<img") {
		t.Fatal("hostile app name or username is not escaped")
	}
	h1 := text(elements(doc, "h1")[0])
	if h1 != hostileName+" wants to access your Gatehouse account" {
		t.Errorf("heading %q", h1)
	}
	if !strings.Contains(text(doc), "Signed in as "+hostileUser) {
		t.Error("signed-in user not shown as text")
	}
	if !strings.Contains(text(doc), "Registered by the operator of this server") {
		t.Error("no operator note for an app the operator registered")
	}
	for _, origin := range []string{"dynamic", "metadata", "unknown", ""} {
		v := v
		v.ClientOrigin = origin
		var b strings.Builder
		if err := Consent(v).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "Registered by the operator") || !strings.Contains(b.String(), "operator of this server") {
			t.Errorf("origin %q: the page claims the operator registered the app, or says nothing of the operator", origin)
		}
	}
	host := findAll(doc, func(n *html.Node) bool {
		return strings.Contains(attrOf(n, "class"), "host") && text(n) == v.RedirectHost
	})
	if len(host) != 1 {
		t.Error("redirect host not shown")
	}
	for _, s := range v.Scopes {
		if !strings.Contains(text(doc), s.Description) || !strings.Contains(text(doc), s.Name) {
			t.Errorf("scope %s not shown", s.Name)
		}
	}

	decision := formWithAction(t, doc, v.Action)
	buttons := elements(decision, "button")
	if len(buttons) != 2 {
		t.Fatalf("want two decision buttons, got %d", len(buttons))
	}
	for i, want := range []struct{ value, label string }{{"deny", "Deny"}, {"allow", "Allow"}} {
		b := buttons[i]
		if attrOf(b, "name") != "decision" || attrOf(b, "value") != want.value || text(b) != want.label || attrOf(b, "type") != "submit" {
			t.Errorf("button %d: %v %q", i, b.Attr, text(b))
		}
	}
	if attrOf(buttons[0], "class") != attrOf(buttons[1], "class") {
		t.Error("Allow and Deny look different")
	}

	notYous := findAll(doc, func(n *html.Node) bool {
		return n.Data == "form" && attrOf(n, "action") == "/logout" && fieldNames(n)["return_to"]
	})
	if len(notYous) != 1 {
		t.Fatalf("want one sign-out form that comes back, got %d", len(notYous))
	}
	notYou := notYous[0]
	wantFields(t, notYou, "return_to")
	in := findAll(notYou, func(n *html.Node) bool { return attrOf(n, "name") == "return_to" })[0]
	if attrOf(in, "value") != v.SwitchReturnTo || attrOf(in, "type") != "hidden" {
		t.Errorf("not-you return_to %v", in.Attr)
	}
	if !strings.Contains(text(notYou), "Not you?") {
		t.Error("no Not you? button")
	}

	t.Run("owner", func(t *testing.T) {
		v := v
		v.ClientOwner = hostileUser
		raw, doc := render(t, Consent(v))
		if strings.Contains(raw, "<img") {
			t.Fatal("owner not escaped")
		}
		if !strings.Contains(text(doc), "Registered by "+hostileUser) {
			t.Error("owner not shown")
		}
	})
	t.Run("javascript action", func(t *testing.T) {
		v := v
		v.Action = "javascript:alert(1)"
		_, doc := render(t, Consent(v))
		for _, f := range elements(doc, "form") {
			if strings.HasPrefix(attrOf(f, "action"), "javascript:") {
				t.Error("a javascript: action reached the page")
			}
		}
	})
}

func TestError(t *testing.T) {
	v := ErrorView{Page: signedOut, Heading: "Cannot continue", Message: "The app sent you here with a broken link.", Detail: `redirect_uri "https://evil.example/cb" is not registered`}
	_, doc := render(t, Error(v))
	if text(elements(doc, "h1")[0]) != v.Heading || !strings.Contains(text(doc), v.Message) {
		t.Error("heading or message missing")
	}
	note := byID(doc, "developer-note")
	if note == nil || text(note) != "For the app's developer" || !strings.Contains(text(note.Parent), v.Detail) {
		t.Error("detail not in the developer box")
	}
	for _, a := range elements(doc, "a") {
		if href := attrOf(a, "href"); !strings.HasPrefix(href, "/") && !strings.HasPrefix(href, "#") || strings.HasPrefix(href, "//") {
			t.Errorf("link %q leaves Gatehouse", href)
		}
	}

	t.Run("no detail", func(t *testing.T) {
		_, doc := render(t, Error(ErrorView{Page: signedOut, Heading: "Not found"}))
		if byID(doc, "developer-note") != nil {
			t.Error("empty developer box")
		}
	})
}

func TestApps(t *testing.T) {
	hostile := confidentialApp
	hostile.ClientID = "c/../x"
	hostile.Name = hostileName
	raw, doc := render(t, Apps(AppsView{Page: signedIn, Apps: []AppSummary{hostile, publicApp}}))
	if strings.Contains(raw, hostileName) {
		t.Fatal("app name not escaped")
	}
	for href, name := range map[string]string{"/apps/c%2F..%2Fx": hostileName, "/apps/c_pub": "Reader"} {
		links := findAll(doc, func(n *html.Node) bool { return n.Data == "a" && attrOf(n, "href") == href })
		if len(links) != 1 || text(links[0]) != name {
			t.Errorf("no link %s to %q", href, name)
		}
	}
	body := text(elements(doc, "main")[0])
	for _, want := range []string{"Confidential", "Public", "https://bookshelf.example/cb", "com.example.reader:/cb", "14 Mar 2025"} {
		if !strings.Contains(body, want) {
			t.Errorf("list does not show %q", want)
		}
	}
	if len(findAll(doc, func(n *html.Node) bool { return attrOf(n, "href") == "/apps/new" })) != 1 {
		t.Error("no link to register a new app")
	}

	t.Run("empty", func(t *testing.T) {
		_, doc := render(t, Apps(AppsView{Page: signedIn}))
		if len(findAll(doc, func(n *html.Node) bool { return strings.Contains(attrOf(n, "class"), "empty-state") })) != 1 {
			t.Error("no empty state")
		}
		if len(findAll(doc, func(n *html.Node) bool { return attrOf(n, "href") == "/apps/new" })) != 1 {
			t.Error("empty state has no link to register an app")
		}
	})
}

func TestAppForm(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		_, doc := render(t, AppForm(AppFormView{Page: signedIn, Name: hostileName, RedirectURIs: "https://a.example/cb\nhttps://b.example/cb", Public: true, Scope: "openid books:read", Error: "bad"}))
		form := formWithAction(t, doc, "/apps")
		wantFields(t, form, "name", "redirect_uris", "post_logout_redirect_uris", "id_token_signed_response_alg", "client_type", "scope", "jwks")
		if ta := elements(form, "textarea"); len(ta) != 3 || attrOf(ta[0], "name") != "redirect_uris" || text(ta[0]) != "https://a.example/cb https://b.example/cb" || attrOf(ta[2], "name") != "jwks" {
			t.Error("redirect_uris is not a textarea keeping its lines, followed by the post_logout_redirect_uris and jwks textareas")
		}
		radios := findAll(form, func(n *html.Node) bool { return attrOf(n, "name") == "client_type" })
		if len(radios) != 2 {
			t.Fatalf("want two client_type radios, got %d", len(radios))
		}
		for _, r := range radios {
			_, checked := attr(r, "checked")
			if attrOf(r, "type") != "radio" || checked != (attrOf(r, "value") == "public") {
				t.Errorf("radio %v", r.Attr)
			}
		}
		if attrOf(byID(doc, "app-name"), "value") != hostileName {
			t.Error("name not echoed")
		}
		hint := byID(doc, "app-scope-hint")
		for _, s := range []string{"openid", "profile", "offline_access", "books:read", "books:write"} {
			if hint == nil || !strings.Contains(text(hint), s) {
				t.Errorf("scope hint does not list %s", s)
			}
		}
	})
	t.Run("edit", func(t *testing.T) {
		_, doc := render(t, AppForm(AppFormView{Page: signedIn, ClientID: "c_conf", Name: "Bookshelf", RedirectURIs: "https://a.example/cb"}))
		form := formWithAction(t, doc, "/apps/c_conf")
		wantFields(t, form, "name", "redirect_uris", "post_logout_redirect_uris", "id_token_signed_response_alg")
	})
}

func TestApp(t *testing.T) {
	app := confidentialApp
	app.Name = hostileName
	v := AppView{Page: signedIn, App: app, Scopes: scopes, GrantTypes: []string{"authorization_code", "refresh_token"}, Secret: "s3cret-value", RedirectURIs: "https://bookshelf.example/cb\nhttp://127.0.0.1/cb"}
	raw, doc := render(t, App(v))
	if strings.Contains(raw, hostileName) {
		t.Fatal("app name not escaped")
	}

	if !strings.Contains(text(doc), "Copy this secret now. It will not be shown again.") {
		t.Error("no secret notice")
	}
	secret := byID(doc, "client-secret")
	if secret == nil || attrOf(secret, "value") != v.Secret {
		t.Fatal("secret not shown in a field")
	}
	if _, ok := attr(secret, "readonly"); !ok {
		t.Error("secret field is editable")
	}
	if id := byID(doc, "client-id"); id == nil || attrOf(id, "value") != app.ClientID {
		t.Error("client id not shown in a field")
	}
	for _, target := range []string{"client-secret", "client-id"} {
		if len(findAll(doc, func(n *html.Node) bool { return attrOf(n, "data-copy-target") == target })) != 1 {
			t.Errorf("no copy button for %s", target)
		}
	}

	body := text(elements(doc, "main")[0])
	for _, want := range []string{"Confidential", "https://bookshelf.example/cb", "Read your books", "books:read", "authorization_code", "refresh_token", "14 Mar 2025"} {
		if !strings.Contains(body, want) {
			t.Errorf("details do not show %q", want)
		}
	}

	edit := formWithAction(t, doc, "/apps/c_conf")
	wantFields(t, edit, "name", "redirect_uris", "post_logout_redirect_uris", "id_token_signed_response_alg")
	if ta := elements(edit, "textarea"); len(ta) != 2 || ta[0].FirstChild == nil || ta[0].FirstChild.Data != v.RedirectURIs {
		t.Error("edit form does not hold the redirect URIs one per line")
	}
	wantFields(t, formWithAction(t, doc, "/apps/c_conf/secret"))
	wantFields(t, formWithAction(t, doc, "/apps/c_conf/delete"))
	if !strings.Contains(body, "stops working immediately") || !strings.Contains(body, "revokes every token") {
		t.Error("rotate or delete does not explain its effect")
	}

	t.Run("public, no secret", func(t *testing.T) {
		_, doc := render(t, App(AppView{Page: signedIn, App: publicApp, GrantTypes: []string{"authorization_code"}}))
		if byID(doc, "client-secret") != nil || strings.Contains(text(doc), "will not be shown again") {
			t.Error("secret notice without a secret")
		}
		if len(findAll(doc, func(n *html.Node) bool { return attrOf(n, "action") == "/apps/c_pub/secret" })) != 0 {
			t.Error("a public app can rotate a secret")
		}
		formWithAction(t, doc, "/apps/c_pub/delete")
	})
}

func TestConnections(t *testing.T) {
	v := ConnectionsView{Page: signedIn, Connections: []Connection{
		{ClientID: "c 1", ClientName: hostileName, Scopes: scopes, GrantedAt: created},
		{ClientID: "c2", ClientName: "Tracker", GrantedAt: created.AddDate(0, 1, 0)},
	}}
	raw, doc := render(t, Connections(v))
	if strings.Contains(raw, hostileName) {
		t.Fatal("app name not escaped")
	}
	revoke := formWithAction(t, doc, "/account/connections/c%201/revoke")
	wantFields(t, revoke)
	if !strings.Contains(text(revoke), "Revoke") {
		t.Error("no Revoke button")
	}
	formWithAction(t, doc, "/account/connections/c2/revoke")
	body := text(elements(doc, "main")[0])
	for _, want := range []string{"Read your books", "Allowed on 14 Mar 2025", "Allowed on 14 Apr 2025"} {
		if !strings.Contains(body, want) {
			t.Errorf("connections do not show %q", want)
		}
	}

	t.Run("empty", func(t *testing.T) {
		_, doc := render(t, Connections(ConnectionsView{Page: signedIn}))
		if len(findAll(doc, func(n *html.Node) bool { return strings.Contains(attrOf(n, "class"), "empty-state") })) != 1 {
			t.Error("no empty state")
		}
		if len(elements(elements(doc, "main")[0], "form")) != 0 {
			t.Error("forms in an empty list")
		}
	})
}

func TestFormPost(t *testing.T) {
	action := "com.example.reader:/cb?x=1&y=2"
	v := FormPostView{Page: signedIn, ClientName: hostileName, Action: action, Fields: []FormField{{"code", "c0de"}, {"state", hostileUser}, {"iss", "https://gatehouse.example"}}}
	raw, doc := render(t, FormPost(v))
	form := formWithAction(t, doc, action)
	if _, ok := attr(form, "data-autosubmit"); !ok {
		t.Error("the form is not marked for app.js to submit")
	}
	wantFields(t, form, "code", "state", "iss")
	for _, f := range v.Fields {
		inputs := findAll(form, func(n *html.Node) bool { return n.Data == "input" && attrOf(n, "name") == f.Name })
		if len(inputs) != 1 || attrOf(inputs[0], "type") != "hidden" || attrOf(inputs[0], "value") != f.Value {
			t.Errorf("field %s: want one hidden input with value %q", f.Name, f.Value)
		}
	}
	if len(findAll(form, func(n *html.Node) bool { return n.Data == "button" && attrOf(n, "type") == "submit" })) != 1 {
		t.Error("no submit button for browsers without JavaScript")
	}
	for _, s := range elements(doc, "script") {
		if attrOf(s, "src") == "" {
			t.Error("an inline script, which the Content-Security-Policy refuses")
		}
	}
	if strings.Contains(raw, hostileName) || strings.Contains(raw, hostileUser) {
		t.Error("a value is not escaped")
	}
}
