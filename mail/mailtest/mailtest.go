// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp) for
// tests and hands over every message it receives, parsed.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how the server speaks TLS.
type Mode int

const (
	Plain    Mode = iota // no TLS at all
	StartTLS             // STARTTLS offered
	Implicit             // TLS from the first byte (smtps)
)

// Options configure a Server. With User set the server requires AUTH PLAIN
// with User and Password.
type Options struct {
	Mode           Mode
	User, Password string
	// Reject makes every DATA command fail, as a broken relay would.
	Reject bool
}

// Message is one received mail.
type Message struct {
	From, To string
	Header   mail.Header
	Raw      string
	Text     string
	HTML     string
	// TLS and Authenticated say how it arrived.
	TLS           bool
	Authenticated string
}

// Server is a running SMTP server.
type Server struct {
	// URL is the smtp:// or smtps:// URL to give a sender, credentials
	// included.
	URL string
	// ClientTLS trusts the server's certificate.
	ClientTLS *tls.Config
	opts      Options
	msgs      chan Message
	mu        sync.Mutex
	reject    bool
}

// NewServer starts a server on 127.0.0.1 that stops when t ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	cert, pool := selfSigned(t)
	s := &Server{opts: opts, msgs: make(chan Message, 100), reject: opts.Reject,
		ClientTLS: &tls.Config{RootCAs: pool}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = nopLogger{}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}}
	if opts.Mode != Plain {
		srv.TLSConfig = tlsConf
	}
	srv.AllowInsecureAuth = opts.Mode == Plain
	var ln net.Listener
	var err error
	if opts.Mode == Implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsConf)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	scheme := "smtp://"
	if opts.Mode == Implicit {
		scheme = "smtps://"
	}
	cred := ""
	if opts.User != "" {
		cred = opts.User + ":" + opts.Password + "@"
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	host := "127.0.0.1"
	if opts.Mode != Plain {
		host = "localhost" // the certificate's name
	}
	s.URL = scheme + cred + net.JoinHostPort(host, port)
	return s
}

// SetReject makes later deliveries fail (true) or succeed again.
func (s *Server) SetReject(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = v
}

// Next waits for the next message.
func (s *Server) Next(t testing.TB) Message {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("mailtest: no message arrived within 15s")
		return Message{}
	}
}

// None checks that no message arrives within d.
func (s *Server) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Fatalf("mailtest: unexpected message to %s: %q", m.To, m.Header.Get("Subject"))
	case <-time.After(d):
	}
}

type session struct {
	srv      *Server
	conn     *smtp.Conn
	authed   string
	from, to string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.srv.opts.User || pass != s.srv.opts.Password {
			return errors.New("bad credentials")
		}
		s.authed = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.opts.User != "" && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	reject := s.srv.reject
	s.srv.mu.Unlock()
	if reject {
		return &smtp.SMTPError{Code: 554, Message: "rejected for the test"}
	}
	_, tlsOn := s.conn.TLSConnectionState()
	m := Message{From: s.from, To: s.to, Raw: string(raw), TLS: tlsOn, Authenticated: s.authed}
	if err := parse(&m); err != nil {
		return err
	}
	s.srv.msgs <- m
	return nil
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func parse(m *Message) error {
	msg, err := mail.ReadMessage(strings.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// multipart decodes quoted-printable itself and drops the header.
		var body []byte
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			body, err = io.ReadAll(quotedprintable.NewReader(p))
		} else {
			body, err = io.ReadAll(p)
		}
		if err != nil {
			return err
		}
		typ, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch typ {
		case "text/plain":
			m.Text = string(body)
		case "text/html":
			m.HTML = string(body)
		}
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
