package mail_test

import (
	"errors"
	"mime"
	"strings"
	"testing"
	"time"

	"gatehouse/mail"
	"gatehouse/mail/mailtest"
)

func newSender(t *testing.T, srv *mailtest.Server) *mail.Sender {
	t.Helper()
	s, err := mail.New(srv.URL, "Gatehouse <noreply@gatehouse.example>")
	if err != nil {
		t.Fatalf("mail.New(%q): %v", srv.URL, err)
	}
	s.TLS = srv.ClientTLS
	s.Timeout = 10 * time.Second
	return s
}

var msg = mail.Message{
	To:      "alice@example.com",
	Subject: "Confirm your address — Gatehouse",
	Text:    "Hello,\nopen https://gatehouse.example/email/verify?token=abc to confirm.\n",
	HTML:    `<p>Hello, <a href="https://gatehouse.example/email/verify?token=abc">confirm</a>.</p>`,
}

func TestSendModes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     mailtest.Options
		wantTLS  bool
		wantAuth string
	}{
		{"plain", mailtest.Options{Mode: mailtest.Plain}, false, ""},
		{"plain with credentials to loopback", mailtest.Options{Mode: mailtest.Plain, User: "u", Password: "p"}, false, "u"},
		{"starttls", mailtest.Options{Mode: mailtest.StartTLS, User: "relay", Password: "s3cret"}, true, "relay"},
		{"smtps", mailtest.Options{Mode: mailtest.Implicit, User: "relay", Password: "s3cret"}, true, "relay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tc.opts)
			if err := newSender(t, srv).Send(t.Context(), msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.Next(t)
			if got.TLS != tc.wantTLS || got.Authenticated != tc.wantAuth {
				t.Errorf("TLS=%v auth=%q, want %v %q", got.TLS, got.Authenticated, tc.wantTLS, tc.wantAuth)
			}
			if got.From != "noreply@gatehouse.example" || got.To != "alice@example.com" {
				t.Errorf("envelope %q -> %q", got.From, got.To)
			}
			h := got.Header
			if d, err := h.Date(); err != nil || time.Since(d) > time.Minute {
				t.Errorf("Date %q: %v", h.Get("Date"), err)
			}
			if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@gatehouse.example>") {
				t.Errorf("Message-ID %q", id)
			}
			if subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); subj != msg.Subject {
				t.Errorf("Subject %q, want %q", subj, msg.Subject)
			}
			if got.Text != strings.ReplaceAll(msg.Text, "\n", "\r\n") {
				t.Errorf("text part %q", got.Text)
			}
			if got.HTML != msg.HTML {
				t.Errorf("html part %q", got.HTML)
			}
		})
	}
}

func TestWrongCredentialsFail(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{Mode: mailtest.StartTLS, User: "relay", Password: "right"})
	s, err := mail.New(strings.Replace(srv.URL, ":right@", ":wrong@", 1), "noreply@gatehouse.example")
	if err != nil {
		t.Fatal(err)
	}
	s.TLS = srv.ClientTLS
	err = s.Send(t.Context(), msg)
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestUntrustedCertificateFails(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{Mode: mailtest.StartTLS})
	s, err := mail.New(srv.URL, "noreply@gatehouse.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), msg); err == nil {
		t.Fatal("Send trusted a self-signed certificate")
	}
}

func TestHeaderInjectionRefused(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{})
	s := newSender(t, srv)
	for _, m := range []mail.Message{
		{To: "alice@example.com\r\nBcc: eve@example.com", Subject: "x"},
		{To: "alice@example.com\nBcc: eve@example.com", Subject: "x"},
		{To: "alice@example.com, eve@example.com", Subject: "x"},
		{To: "Alice <alice@example.com>", Subject: "x"},
		{To: "alice@example.com", Subject: "hi\r\nBcc: eve@example.com"},
	} {
		if err := s.Send(t.Context(), m); err == nil {
			t.Errorf("Send(%q, %q) succeeded", m.To, m.Subject)
		}
	}
	srv.None(t, 200*time.Millisecond)
	if _, err := mail.New(srv.URL, "noreply@example.com\r\nBcc: eve@example.com"); !errors.Is(err, mail.ErrBadAddress) {
		t.Errorf("From with CRLF: %v", err)
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"http://mail.example", "smtp://", "smtp://host/path", "smtp://host?x=1", "::"} {
		if _, err := mail.New(u, "a@example.com"); err == nil {
			t.Errorf("mail.New(%q) succeeded", u)
		}
	}
}

func TestRejectedDeliveryIsAnError(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.Options{Reject: true})
	if err := newSender(t, srv).Send(t.Context(), msg); err == nil {
		t.Fatal("Send to a rejecting server succeeded")
	}
}
