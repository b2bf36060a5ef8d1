package templates

import (
	"strings"
	"testing"

	"github.com/a-h/templ"
	"golang.org/x/net/html"
)

func TestMails(t *testing.T) {
	v := MailView{ServerName: "id.example", Username: "o'brien", Address: "a&b@example.com",
		Link: "https://id.example/password/reset?token=abc", Lifetime: "30 minutes"}
	for _, tc := range []struct {
		name       string
		text, html templ.Component
	}{
		{"verify", VerifyEmailText(v), VerifyEmailHTML(v)},
		{"reset", ResetPasswordText(v), ResetPasswordHTML(v)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := mustRender(t, tc.text)
			// Plain text is not HTML: nothing is escaped, lines are kept.
			for _, want := range []string{"o'brien", "id.example", "\n" + v.Link + "\n", "30 minutes", "If you did not"} {
				if !strings.Contains(text, want) {
					t.Errorf("text lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "&amp;") || strings.Contains(text, "&#39;") || strings.Contains(text, "<") {
				t.Errorf("text is escaped like HTML:\n%s", text)
			}
			page, doc := render(t, tc.html)
			links := findAll(doc, func(n *html.Node) bool { return n.Data == "a" })
			if len(links) != 1 || attrOf(links[0], "href") != v.Link {
				t.Errorf("want one link to %s, got %d", v.Link, len(links))
			}
			for _, tag := range []string{"img", "script", "link", "style", "iframe"} {
				if len(elements(doc, tag)) != 0 {
					t.Errorf("the HTML mail has a <%s>: nothing may load when it is opened", tag)
				}
			}
			if !strings.Contains(page, "o&#39;brien") || !strings.Contains(page, "If you did not") {
				t.Errorf("HTML lacks the escaped username or the advice: %s", page)
			}
		})
	}
}
