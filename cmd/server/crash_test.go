package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	_ "modernc.org/sqlite"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// serverBinary builds cmd/server once per test run.
func serverBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gatehouse")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestMain removes the binary the process tests share, which outlives any
// one test's temporary directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// process is the server binary running on a database file.
type process struct {
	cmd  *exec.Cmd
	URL  string
	addr string
	logs *syncBuffer
	done chan error
}

// startProcess runs the binary and waits until it listens. addr may name
// a port to reuse after a restart.
func startProcess(t *testing.T, bin, db, addr string) *process {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--db", db, "--secret", testSecret, "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gatehouse listening" {
				listening <- line.Addr
			}
		}
		io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.addr = <-listening:
		p.URL = "http://" + p.addr
		return p
	case err := <-p.done:
		t.Fatalf("server exited before listening: %v\n%s", err, p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not listen within 30s:\n%s", p.logs)
	}
	return nil
}

// runCLI runs one of the binary's subcommands on db and returns stdout.
func runCLI(t *testing.T, bin, db, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--db", db, "--secret", testSecret)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

type crashClient struct{ ID, Secret string }

func createCrashClient(t *testing.T, bin, db string) crashClient {
	out := runCLI(t, bin, db, "", "clients", "create", "--name", "Load", "--redirect-uri", "http://127.0.0.1:9999/callback")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" || c.Secret == "" {
		t.Fatalf("clients create printed %q: %v", out, err)
	}
	return crashClient{c.ID, c.Secret}
}

// acknowledged is what the server confirmed before it died.
type acknowledged struct {
	mu     sync.Mutex
	tokens []*oauth2.Token
	books  map[string]bookAck // id -> what was written
}

type bookAck struct{ title, token string }

// TestCrashSafety kills the server with SIGKILL while codes are redeemed
// and books written, restarts it on the same SQLite file, and checks that
// nothing the server acknowledged was lost.
func TestCrashSafety(t *testing.T) {
	bin := serverBinary(t)
	db := filepath.Join(t.TempDir(), "gatehouse.db")
	runCLI(t, bin, db, "correct horse battery\n", "users", "create", "--username", "alice", "--password-stdin")
	client := createCrashClient(t, bin, db)
	p := startProcess(t, bin, db, "127.0.0.1:0")

	const workers = 6
	conf := &oauth2.Config{
		ClientID: client.ID, ClientSecret: client.Secret, RedirectURL: "http://127.0.0.1:9999/callback",
		Scopes:   []string{"offline_access", "books:read", "books:write"},
		Endpoint: oauth2.Endpoint{AuthURL: p.URL + "/oauth2/authorize", TokenURL: p.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	// Each worker is a signed-in browser; the first consents, so the
	// others' authorization requests come straight back with a code.
	browsers := make([]*browser, workers)
	for i := range browsers {
		browsers[i] = newBrowser(t, p.URL)
		v := oauth2.GenerateVerifier()
		authorizedCode(t, nil, browsers[i], conf, v, "alice", "correct horse battery")
	}

	ack := &acknowledged{books: map[string]bookAck{}}
	var attempts atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				attempts.Add(1)
				if loadOnce(browsers[i].client, conf, ack, fmt.Sprintf("worker %d book %d", i, n)) != nil {
					return
				}
			}
		}()
	}
	// Let the load run, then kill the server in the middle of it.
	time.Sleep(3 * time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	close(stop)
	wg.Wait()

	if ok := integrityCheck(t, db); ok != "ok" {
		t.Fatalf("PRAGMA integrity_check after SIGKILL: %s", ok)
	}

	restarted := startProcess(t, bin, db, p.addr)
	lost := 0
	for id, b := range ack.books {
		resp, got := api(t, http.MethodGet, restarted.URL+"/api/books/"+id, b.token, nil)
		if resp.StatusCode != http.StatusOK || got["title"] != b.title {
			lost++
			t.Errorf("acknowledged book %s: %d %v, want %q", id, resp.StatusCode, got, b.title)
		}
	}
	conf.Endpoint.TokenURL = restarted.URL + "/oauth2/token"
	for _, tok := range ack.tokens {
		if resp, _ := api(t, http.MethodGet, restarted.URL+"/api/books?limit=1", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
			lost++
			t.Errorf("acknowledged access token: %d after restart", resp.StatusCode)
		}
		expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
		if _, err := conf.TokenSource(t.Context(), expired).Token(); err != nil {
			lost++
			t.Errorf("acknowledged refresh token: %v after restart", err)
		}
	}
	if len(ack.tokens) < 10 || len(ack.books) < 10 {
		t.Fatalf("only %d token responses and %d book writes acknowledged before the kill; the load is too light to prove anything", len(ack.tokens), len(ack.books))
	}
	t.Logf("requests attempted %d; acknowledged: %d token responses (code redemptions), %d book writes; lost: %d",
		attempts.Load(), len(ack.tokens), len(ack.books), lost)
	if ok := integrityCheck(t, db); ok != "ok" {
		t.Fatalf("PRAGMA integrity_check after restart: %s", ok)
	}
}

// loadContext bounds each token request of the load, so a worker cannot
// hang on a server that is gone.
var loadContext = context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})

// loadOnce redeems a fresh code and writes a book with the token,
// recording each answer the server acknowledged. An error means the
// server is gone.
func loadOnce(c *http.Client, conf *oauth2.Config, ack *acknowledged, title string) error {
	v := oauth2.GenerateVerifier()
	resp, err := c.Get(conf.AuthCodeURL("crash-test-state", oauth2.S256ChallengeOption(v)))
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return fmt.Errorf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := conf.Exchange(loadContext, loc.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		return err
	}
	ack.mu.Lock()
	ack.tokens = append(ack.tokens, tok)
	ack.mu.Unlock()

	body, _ := json.Marshal(map[string]any{"title": title})
	req, _ := http.NewRequest(http.MethodPost, strings.TrimSuffix(conf.Endpoint.TokenURL, "/oauth2/token")+"/api/books", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var book struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&book) != nil {
		return fmt.Errorf("create book: %d", resp.StatusCode)
	}
	ack.mu.Lock()
	ack.books[book.ID] = bookAck{title: title, token: tok.AccessToken}
	ack.mu.Unlock()
	return nil
}

func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&result); err != nil {
		t.Fatal(err)
	}
	return result
}
