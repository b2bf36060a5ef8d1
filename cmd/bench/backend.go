package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/oauth/dpoptest"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
)

// fixture is what the preparation leaves for the scenarios.
type fixture struct {
	// appES is app with ES256 ID tokens; device a public device-flow
	// client.
	app, appES, service, device client
	cookie                      *http.Cookie
	// access[w] is worker w's access token for the resource and
	// introspection scenarios; refresh[w] is the head of its own refresh
	// chain (rotating one retires the access token issued with it).
	access, refresh []string
	// dpopAccess[w] is worker w's access token bound to dpopKeys[w].
	dpopAccess []string
	dpopKeys   []dpoptest.Key
	flowUsers  []string
}

const benchPassword = "correct horse battery staple"

// cli runs one of the server binary's subcommands on the database.
func cli(ctx context.Context, o options, dsn, secret, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, o.binary, append(args, "--db", dsn, "--secret", secret)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("server %s: %w: %s", strings.Join(args[:2], " "), err, stderr.Bytes())
	}
	return out, nil
}

func runBackend(ctx context.Context, o options, backend, dsn string, getCeil, postCeil float64, stderr io.Writer) ([]row, error) {
	secret := randomHex(32)
	suffix := randomHex(4)
	mainUser := "bench-" + suffix
	o.logf(stderr, "%s: creating a user and clients with the CLI", backend)
	if _, err := cli(ctx, o, dsn, secret, benchPassword+"\n", "users", "create", "--username", mainUser, "--password-stdin"); err != nil {
		return nil, err
	}
	var fx fixture
	for _, c := range []struct {
		dst  *client
		args []string
	}{
		{&fx.app, []string{"--name", "Bench App", "--redirect-uri", redirectURI}},
		{&fx.appES, []string{"--name", "Bench App ES256", "--redirect-uri", redirectURI, "--id-token-alg", "ES256"}},
		{&fx.service, []string{"--name", "Bench Service", "--grant-type", "client_credentials"}},
		{&fx.device, []string{"--name", "Bench TV", "--public", "--grant-type", clients.GrantDeviceCode}},
	} {
		out, err := cli(ctx, o, dsn, secret, "", append([]string{"clients", "create"}, c.args...)...)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(out, c.dst); err != nil {
			return nil, fmt.Errorf("clients create printed %q: %w", out, err)
		}
	}

	logPath := filepath.Join(o.tmp, backend+".log")
	serverArgs := []string{"--db", dsn, "--secret", secret}
	p, err := startProcess(ctx, logPath, o.binary, serverArgs...)
	if err != nil {
		return nil, err
	}
	defer func() { p.stop() }()
	g := &gate{url: p.URL, http: newHTTPClient(max(o.c, o.flowC))}
	o.logf(stderr, "%s: signing in, consenting, issuing %d token pairs, adding books", backend, 2*o.c)
	if err := prepare(ctx, o, g, mainUser, suffix, &fx); err != nil {
		return nil, err
	}

	var rows []row
	for _, sc := range allScenarios {
		if !o.scenarios[sc.id] {
			continue
		}
		// Each scenario gets a fresh server process, so its peak RSS is
		// its own and not what an earlier scenario left on the heap.
		p.stop()
		if sc.id == 7 {
			if err := fill(ctx, o, dsn, fx, stderr); err != nil {
				return rows, err
			}
		}
		if p, err = startProcess(ctx, logPath, o.binary, serverArgs...); err != nil {
			return rows, err
		}
		g = &gate{url: p.URL, http: newHTTPClient(max(o.c, o.flowC))}
		conc := o.c
		unit := "req/s"
		if sc.flow {
			conc, unit = o.flowC, "flows/s"
		}
		ceil := getCeil
		if sc.post {
			ceil = postCeil
		}
		var devices []string
		if sc.id == 10 {
			// Codes are made for the scenario's own process, so that
			// none expires while earlier scenarios run.
			n := devicePoolSize(o.d)
			o.logf(stderr, "%s: requesting %d device codes", backend, n)
			if devices, err = g.deviceCodes(ctx, fx.device, n, o.c); err != nil {
				return rows, err
			}
		}
		o.logf(stderr, "%s: scenario %d", backend, sc.id)
		off := p.logSize()
		p.resetPeakRSS()
		res := run(ctx, conc, o.d, scenarioOp(sc.id, g, fx, o.flowScope, devices), p)
		r := row{backend: backend, name: fmt.Sprintf("%d. %s", sc.id, sc.name), c: conc, unit: unit, res: res, rss: p.peakRSS(), id: sc.id, of: sc.of}
		r.logProbs, r.locked, r.firstProblem = p.logProblems(off)
		r.ratio = res.rate() * float64(sc.requests) / ceil
		rows = append(rows, r)
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	return rows, nil
}

// prepare signs the main user in, lets the app have every scope once, and
// issues each worker its tokens; it adds the books the resource scenario
// lists and registers the users of the first-time flow.
func prepare(ctx context.Context, o options, g *gate, mainUser, suffix string, fx *fixture) error {
	var err error
	if fx.cookie, err = g.signIn(ctx, mainUser, benchPassword); err != nil {
		return err
	}
	for _, c := range []client{fx.app, fx.appES} {
		if _, err := g.consentFlow(ctx, c, fx.cookie, consentScope); err != nil {
			return err
		}
	}
	for range o.c {
		t, err := g.returningFlow(ctx, fx.app, fx.cookie, apiScope, nil)
		if err != nil {
			return err
		}
		fx.access = append(fx.access, t.Access)
		if t, err = g.returningFlow(ctx, fx.app, fx.cookie, apiScope, nil); err != nil {
			return err
		}
		fx.refresh = append(fx.refresh, t.Refresh)
		key := dpoptest.NewES256()
		if t, err = g.returningFlow(ctx, fx.app, fx.cookie, apiScope, &key); err != nil {
			return err
		}
		fx.dpopAccess, fx.dpopKeys = append(fx.dpopAccess, t.Access), append(fx.dpopKeys, key)
	}
	for i := range 25 {
		body := fmt.Sprintf(`{"title":"Book %d","author":"Author %d","year":%d}`, i, i, 1900+i)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/api/books", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = bearer(fx.access[0])
		req.Header.Set("Content-Type", "application/json")
		resp, err := g.http.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err := expect(resp, http.StatusCreated); err != nil {
			return err
		}
	}
	for i := range o.flowC {
		name := fmt.Sprintf("bench-%s-%d", suffix, i)
		if _, err := g.signUp(ctx, name, benchPassword); err != nil {
			return err
		}
		fx.flowUsers = append(fx.flowUsers, name)
	}
	return nil
}

func scenarioOp(id int, g *gate, fx fixture, flowScope string, devices []string) op {
	switch id {
	case 1, 7:
		return func(ctx context.Context, w int) error {
			resp, body, err := g.do(ctx, http.MethodGet, "/api/books?limit=20", nil, bearer(fx.access[w]))
			if err != nil {
				return err
			}
			if err := expect(resp, http.StatusOK); err != nil {
				return fmt.Errorf("%w: %s", err, body)
			}
			if n := bytes.Count(body, []byte(`"title"`)); n != 20 {
				return fmt.Errorf("GET /api/books listed %d books, want 20", n)
			}
			return nil
		}
	case 2:
		form := url.Values{"grant_type": {"client_credentials"}}
		return func(ctx context.Context, _ int) error {
			_, err := g.token(ctx, fx.service, form)
			return err
		}
	case 3, 8:
		app, alg := fx.app, "RS256"
		if id == 8 {
			app, alg = fx.appES, "ES256"
		}
		return func(ctx context.Context, _ int) error {
			t, err := g.returningFlow(ctx, app, fx.cookie, flowScope, nil)
			if err == nil && slices.Contains(strings.Fields(flowScope), "openid") {
				err = checkIDToken(t.IDToken, alg)
			}
			return err
		}
	case 4:
		return func(ctx context.Context, w int) error {
			cookie, err := g.signIn(ctx, fx.flowUsers[w], benchPassword)
			if err != nil {
				return err
			}
			_, err = g.consentFlow(ctx, fx.app, cookie, flowScope)
			return err
		}
	case 5:
		refresh := append([]string(nil), fx.refresh...)
		return func(ctx context.Context, w int) error {
			t, err := g.token(ctx, fx.app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh[w]}})
			if err != nil {
				return err
			}
			if t.Refresh == "" {
				return fmt.Errorf("rotation returned no refresh token")
			}
			refresh[w] = t.Refresh
			return nil
		}
	case 6:
		return func(ctx context.Context, w int) error {
			resp, body, err := g.do(ctx, http.MethodPost, "/oauth2/introspect", url.Values{"token": {fx.access[w]}}, basicAuth(fx.app))
			if err != nil {
				return err
			}
			if err := expect(resp, http.StatusOK); err != nil {
				return err
			}
			if !bytes.Contains(body, []byte(`"active":true`)) {
				return fmt.Errorf("introspection says %s", body)
			}
			return nil
		}
	case 9:
		return func(ctx context.Context, w int) error {
			header := http.Header{
				"Authorization": {"DPoP " + fx.dpopAccess[w]},
				"Dpop":          {fx.dpopKeys[w].Build(dpoptest.Proof{Method: http.MethodGet, URL: g.url + "/api/books", AccessToken: fx.dpopAccess[w]})},
			}
			resp, body, err := g.do(ctx, http.MethodGet, "/api/books?limit=20", nil, header)
			if err != nil {
				return err
			}
			if err := expect(resp, http.StatusOK); err != nil {
				return fmt.Errorf("%w: %s", err, body)
			}
			if n := bytes.Count(body, []byte(`"title"`)); n != 20 {
				return fmt.Errorf("GET /api/books listed %d books, want 20", n)
			}
			return nil
		}
	case 10:
		var next atomic.Int64
		return func(ctx context.Context, _ int) error {
			code := devices[int(next.Add(1)-1)%len(devices)]
			resp, body, err := g.do(ctx, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {clients.GrantDeviceCode}, "device_code": {code}, "client_id": {fx.device.ID}}, nil)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte(`"authorization_pending"`)) {
				return fmt.Errorf("device-code poll: %d %s, want 400 authorization_pending (slow_down means the %d codes came round again within the interval: the server polled faster than devicePoolRate)", resp.StatusCode, body, len(devices))
			}
			return nil
		}
	}
	panic(fmt.Sprintf("no scenario %d", id))
}

// fill adds o.users users and o.tokens live access tokens straight into
// the database, in large transactions. The tokens carry the serialized
// request of a real one, so rows and indexes have their real size, but
// random signatures: no one holds them. The measured requests still use
// the workers' real tokens, now among a million others.
func fill(ctx context.Context, o options, dsn string, fx fixture, stderr io.Writer) error {
	start := time.Now()
	store, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	_, sig, _ := strings.Cut(fx.access[0], ".")
	model, err := store.GetToken(ctx, storage.KindAccess, sig)
	if err != nil {
		return fmt.Errorf("read a real access token: %w", err)
	}
	hash, err := accounts.HashPassword(benchPassword)
	if err != nil {
		return err
	}
	const batch = 10_000
	now := time.Now()
	userIDs := make([]string, o.users)
	for lo := 0; lo < o.users; lo += batch {
		err := store.InTx(ctx, func(ctx context.Context) error {
			for i := lo; i < min(lo+batch, o.users); i++ {
				userIDs[i] = storage.NewID()
				u := storage.User{ID: userIDs[i], Username: fmt.Sprintf("filler-%s-%d", userIDs[i], i), PasswordHash: hash, CreatedAt: now}
				if err := store.CreateUser(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill users: %w", err)
		}
	}
	var sigBytes [32]byte
	for lo := 0; lo < o.tokens; lo += batch {
		err := store.InTx(ctx, func(ctx context.Context) error {
			for i := lo; i < min(lo+batch, o.tokens); i++ {
				rand.Read(sigBytes[:])
				t := model
				t.Signature = base64.RawURLEncoding.EncodeToString(sigBytes[:])
				t.RequestID = storage.NewID()
				if len(userIDs) > 0 {
					t.Subject = userIDs[mrand.IntN(len(userIDs))]
				}
				t.RequestedAt = now
				t.ExpiresAt = now.Add(time.Hour)
				if err := store.CreateToken(ctx, t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill tokens: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	o.logf(stderr, "filled %d users and %d tokens in %s", o.users, o.tokens, time.Since(start).Round(time.Second))
	return nil
}
