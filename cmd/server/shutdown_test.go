package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestGracefulShutdown sends SIGTERM to the server binary while a request
// body is still on its way: the server stops accepting connections at
// once, answers the request in flight, closes the database and exits 0.
func TestGracefulShutdown(t *testing.T) {
	bin := serverBinary(t)
	db := filepath.Join(t.TempDir(), "gatehouse.db")
	runCLI(t, bin, db, "correct horse battery\n", "users", "create", "--username", "alice", "--password-stdin")
	client := createCrashClient(t, bin, db)
	p := startProcess(t, bin, db, "127.0.0.1:0")
	conf := &oauth2.Config{
		ClientID: client.ID, ClientSecret: client.Secret, RedirectURL: "http://127.0.0.1:9999/callback",
		Scopes:   []string{"books:write"},
		Endpoint: oauth2.Endpoint{AuthURL: p.URL + "/oauth2/authorize", TokenURL: p.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(t.Context(), authorizedCode(t, nil, newBrowser(t, p.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}

	// The headers and half the body of a book, then SIGTERM.
	body := `{"title":"Written during shutdown","author":"Slow Client"}`
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/books HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		p.addr, tok.AccessToken, len(body), body[:len(body)/2])
	// Give the server time to read the headers, so the connection is active.
	time.Sleep(200 * time.Millisecond)
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	refused := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			refused = true
			break
		}
		c.Close()
	}
	if !refused {
		t.Fatal("the server still accepts connections 5s after SIGTERM")
	}
	select {
	case err := <-p.done:
		t.Fatalf("the server exited (%v) with a request in flight", err)
	default:
	}

	io.WriteString(conn, body[len(body)/2:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	var book map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&book); err != nil || resp.StatusCode != http.StatusCreated || book["title"] != "Written during shutdown" {
		t.Fatalf("the request in flight got %d %v (%v), want 201 and the book", resp.StatusCode, book, err)
	}

	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want status 0\n%s", err, p.logs)
		}
	case <-time.After(shutdownGrace + 5*time.Second):
		t.Fatalf("still running %v after SIGTERM", shutdownGrace+5*time.Second)
	}
	t.Logf("exited 0 %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(p.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", p.logs)
	}
	// SQLite removes the write-ahead log when the last connection closes.
	if _, err := os.Stat(db + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("%s-wal is still there (%v): the database was not closed", db, err)
	}
	if ok := integrityCheck(t, db); ok != "ok" {
		t.Fatalf("PRAGMA integrity_check: %s", ok)
	}
}
