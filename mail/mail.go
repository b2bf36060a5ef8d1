// Package mail sends Gatehouse's messages (address verification, password
// reset) over SMTP: smtp:// upgrades with STARTTLS whenever the server offers
// it, smtps:// speaks TLS from the first byte. Each message carries a plain
// text and an HTML alternative, a Date and a Message-ID, and nothing that
// tracks its reader.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// Message is one mail to one recipient.
type Message struct {
	To      string // a bare address
	Subject string
	Text    string
	HTML    string
}

// Sender delivers messages through one SMTP server.
type Sender struct {
	host     string // host name, for TLS and the Message-ID
	addr     string // host:port
	implicit bool   // smtps://
	auth     smtp.Auth
	from     *mail.Address
	// TLS, when set, is the base TLS configuration (tests give their own
	// root certificates); ServerName is always the URL's host.
	TLS *tls.Config
	// Timeout bounds one delivery, from dialling to QUIT.
	Timeout time.Duration
	Now     func() time.Time
}

// New parses an smtp:// or smtps:// URL (user and password in it, when the
// relay wants them) and the From address.
func New(rawURL, from string) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("mail: the SMTP URL does not parse")
	}
	s := &Sender{host: u.Hostname(), Timeout: 30 * time.Second, Now: time.Now}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "587"
		}
	case "smtps":
		s.implicit = true
		if port == "" {
			port = "465"
		}
	default:
		return nil, fmt.Errorf("mail: the SMTP URL must start with smtp:// or smtps://, not %q", u.Scheme+"://")
	}
	if s.host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("mail: the SMTP URL must be smtp[s]://[user:password@]host[:port]")
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		pass, _ := u.User.Password()
		// net/smtp's PLAIN refuses to send the password over a connection
		// that is neither TLS nor to localhost.
		s.auth = smtp.PlainAuth("", u.User.Username(), pass, s.host)
	}
	if s.from, err = ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail: --mail-from: %w", err)
	}
	return s, nil
}

// ErrBadAddress is an address that is not a single plain address-spec.
var ErrBadAddress = errors.New("not a valid email address")

// ParseAddress accepts an address with an optional display name
// ("Gatehouse <noreply@example.com>") and refuses anything that could
// smuggle a header or a second recipient.
func ParseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, ErrBadAddress
	}
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") || strings.ContainsAny(a.Address, "\r\n<>, ") {
		return nil, ErrBadAddress
	}
	return a, nil
}

// Send delivers m. The connection is upgraded with STARTTLS whenever the
// server offers it, and credentials are never sent in the clear.
func (s *Sender) Send(ctx context.Context, m Message) error {
	to, err := ParseAddress(m.To)
	if err != nil || to.Name != "" {
		return fmt.Errorf("mail: recipient: %w", ErrBadAddress)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("mail: a subject must be one line")
	}
	body, err := s.compose(to, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	if err := s.deliver(ctx, to.Address, body); err != nil {
		return fmt.Errorf("mail: send to %s via %s: %w", s.addr, s.host, err)
	}
	return nil
}

func (s *Sender) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLS != nil {
		c = s.TLS.Clone()
	}
	c.ServerName = s.host
	return c
}

func (s *Sender) deliver(ctx context.Context, to string, body []byte) error {
	var conn net.Conn
	var err error
	d := &net.Dialer{}
	if s.implicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: s.tlsConfig()}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return err
	}
	// net/smtp takes no context; the deadline and the close on cancel
	// bound every exchange instead.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(helloName(s.from.Address)); err != nil {
		return err
	}
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig()); err != nil {
				return err
			}
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// helloName is the sender's domain: a relay that checks HELO against the
// From domain is happier with it than with "localhost".
func helloName(from string) string {
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		return from[i+1:]
	}
	return "localhost"
}

// compose writes the headers and a multipart/alternative body, the plain
// text first so that the HTML is preferred by readers that show it.
func (s *Sender) compose(to *mail.Address, m Message) ([]byte, error) {
	var buf bytes.Buffer
	var id [16]byte
	rand.Read(id[:])
	mw := multipart.NewWriter(&buf)
	h := []struct{ k, v string }{
		{"From", s.from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", s.Now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id[:]) + "@" + helloName(s.from.Address) + ">"},
		{"MIME-Version", "1.0"},
		{"Auto-Submitted", "auto-generated"},
		{"Content-Type", `multipart/alternative; boundary="` + mw.Boundary() + `"`},
	}
	for _, f := range h {
		fmt.Fprintf(&buf, "%s: %s\r\n", f.k, f.v)
	}
	buf.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(crlf(part.body))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// crlf gives every line of a body the CRLF ending SMTP wants.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}
