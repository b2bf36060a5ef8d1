package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"gatehouse/accounts"
	"gatehouse/books"
	"gatehouse/clients"
	"gatehouse/fetch"
	"gatehouse/mcp"
	"gatehouse/oauth"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
	"gatehouse/web"
	"gatehouse/web/openapi"
	"gatehouse/web/templates"
)

func serve(ctx context.Context, cfg config, stderr io.Writer) error {
	logger, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	// A GOMEMLIMIT in the environment wins (see memlimit.go).
	if os.Getenv("GOMEMLIMIT") == "" {
		go followLiveHeap(ctx)
	}
	srv, err := start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return srv.wait(ctx)
}

// server is a running Gatehouse: the listener, the HTTP server and what
// they hold open.
type server struct {
	URL      string
	http     *http.Server
	listener net.Listener
	store    storage.Store
	logger   *slog.Logger
	oauth    *oauth.Handler
	done     chan error
	stopBg   context.CancelFunc
}

// shutdownGrace is how long in-flight requests get to finish after SIGTERM.
const shutdownGrace = 20 * time.Second

// start opens the database (applying migrations), wires every handler and
// begins serving. It is the only place that knows every package.
func start(ctx context.Context, cfg config, logger *slog.Logger) (*server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	secret, oldSecrets, err := loadSecrets(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.Issuer == "" {
		cfg.Issuer = defaultIssuer(ln.Addr().(*net.TCPAddr), cfg.Addr)
	}
	store, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	handler, oauthHandler, err := newHandler(ctx, cfg, store, secret, oldSecrets, logger)
	if err != nil {
		store.Close()
		ln.Close()
		return nil, err
	}
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	s := &server{
		URL:      cfg.Issuer,
		listener: ln,
		store:    store,
		logger:   logger,
		oauth:    oauthHandler,
		done:     make(chan error, 1),
		stopBg:   stopBg,
		http: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
	go cleanup(bg, store, cfg.CleanupInterval, cfg.AuditRetention, logger)
	go func() { s.done <- s.http.Serve(ln) }()
	logger.Info("gatehouse listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "db", describeDB(cfg.DB))
	announce(logger, cfg)
	return s, nil
}

// wait serves until ctx is cancelled, then stops taking connections, lets
// in-flight requests finish and closes the database.
func (s *server) wait(ctx context.Context) error {
	select {
	case err := <-s.done:
		s.stopBg()
		s.store.Close()
		return err
	case <-ctx.Done():
	}
	return s.shutdown()
}

func (s *server) shutdown() error {
	s.logger.Info("shutting down")
	s.stopBg()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.http.Shutdown(sctx)
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	if errors.Is(<-s.done, http.ErrServerClosed) && err == nil {
		s.logger.Info("stopped")
	}
	return err
}

func defaultIssuer(addr *net.TCPAddr, configured string) string {
	host, _, _ := net.SplitHostPort(configured)
	if host == "" || host == "localhost" || addr.IP.IsUnspecified() {
		host = "localhost"
	} else {
		host = addr.IP.String()
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// newHandler builds every handler on one mux and wraps it in the server's
// middleware.
func newHandler(ctx context.Context, cfg config, store storage.Store, secret []byte, oldSecrets [][]byte, logger *slog.Logger) (http.Handler, *oauth.Handler, error) {
	now := cfg.now
	if now == nil {
		now = time.Now
	}
	secure := strings.HasPrefix(cfg.Issuer, "https://")
	sessions := accounts.NewSessions(store, cookieKeys(secret, oldSecrets), accounts.SessionConfig{
		Secure:         secure,
		Lifetime:       cfg.SessionLifetime,
		IdleTimeout:    cfg.SessionIdleTimeout,
		TrustedProxies: cfg.TrustedProxies,
		Now:            now,
		Logger:         logger,
	})
	newPage := func(r *http.Request, title string) templates.Page {
		id, _ := sessions.Identity(r)
		return templates.Page{Title: title, User: id.Username, CSS: web.AssetURL("app.css"), JS: web.AssetURL("app.js"), Icon: web.AssetURL("icon.svg")}
	}
	oldTokenKeys := make([][]byte, len(oldSecrets))
	for i, s := range oldSecrets {
		oldTokenKeys[i] = derive(s, "token-hmac")
	}
	m := newMetrics()
	auditLog := newAuditLog(store, logger, m)
	oauthHandler, err := oauth.New(ctx, store, sessions, oauth.Config{
		Issuer:              cfg.Issuer,
		TokenSecret:         derive(secret, "token-hmac"),
		OldTokenSecrets:     oldTokenKeys,
		SigningKeySealKeys:  signingKeySealKeys(secret, oldSecrets),
		AccessTokenTTL:      cfg.AccessTokenTTL,
		RefreshTokenTTL:     cfg.RefreshTokenTTL,
		CodeTTL:             cfg.CodeTTL,
		RefreshGrace:        cfg.RefreshGrace,
		RequirePKCE:         cfg.RequirePKCE,
		AllowQueryToken:     cfg.AllowQueryToken,
		DynamicRegistration: cfg.DynamicRegistration,
		RequirePAR:          cfg.RequirePAR,
		DPoPNonce:           cfg.DPoPNonce,
		SecretHasher:        clients.SecretHasher{},
		Audit:               auditLog,

		ClientMetadataDocuments:     cfg.ClientMetadataDocuments,
		ClientMetadataAllowLoopback: cfg.ClientMetadataAllowLoopback,
	}, logger, newPage)
	if err != nil {
		return nil, nil, err
	}
	// For clients registered with a jwks_uri.
	oauthHandler.JWKS = oauth.FetchedJWKS{Fetcher: fetch.New(fetch.Config{})}
	oauthHandler.Metrics = m
	if p, ok := store.(interface{ PoolStats() map[string]sql.DBStats }); ok {
		m.registerPools(p.PoolStats)
	}

	emailPages, err := newEmailPages(cfg, store, sessions, logger, newPage, now, auditLog)
	if err != nil {
		return nil, nil, err
	}
	codeNow := cfg.codeNow
	if codeNow == nil {
		codeNow = now
	}
	twoStep, err := accounts.NewTwoStep(store, totpSealKeys(secret, oldSecrets), codeNow)
	if err != nil {
		return nil, nil, err
	}
	resealed, unsealable, err := twoStep.Reseal(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reseal authenticator secrets: %w", err)
	}
	if resealed > 0 {
		logger.Info("authenticator secrets sealed under the current secret", "count", resealed)
	}
	if unsealable > 0 {
		logger.Warn("authenticator secrets open with neither --secret nor --old-secrets; those users cannot finish signing in until `server users reset-mfa`", "count", unsealable)
	}
	oauthHandler.SecondFactor = twoStep.Enabled
	mux := http.NewServeMux()
	accountsHandler := &accounts.Handler{
		Store:            store,
		Sessions:         sessions,
		Logger:           logger,
		NewPage:          newPage,
		RegistrationOpen: cfg.Registration,
		Limiter:          &accounts.StoreLimiter{Store: store},
		TrustedProxies:   cfg.TrustedProxies,
		Now:              now,
		FailedLogins:     m.failedLogins,
		ThrottledLogins:  m.throttled,
		Email:            emailPages,
		Audit:            auditLog,
		Activity:         store,
		TwoStep:          twoStep,
	}
	passkeys := &accounts.Passkeys{
		Store:          store,
		Sessions:       sessions,
		Logger:         logger,
		Limiter:        &accounts.StoreLimiter{Store: store},
		TrustedProxies: cfg.TrustedProxies,
		Audit:          auditLog,
		Now:            now,
		NewPage:        newPage,
		ScriptURL:      web.AssetURL("passkey.js"),
		Secure:         secure,
	}
	switch err := passkeys.UseIssuer(cfg.Issuer); {
	case errors.Is(err, accounts.ErrNoPasskeyHost):
		logger.InfoContext(ctx, "passkeys are off", "reason", err.Error())
	case err != nil:
		return nil, nil, err
	}
	accountsHandler.Passkeys = passkeys
	accountsHandler.Mount(mux)
	passkeys.Mount(mux)
	emailPages.Mount(mux)
	oauthHandler.DeviceLimiter = &accounts.StoreLimiter{Store: store}
	oauthHandler.ClientAddress = accountsHandler.ClientAddress
	oauthHandler.Mount(mux)
	signedIn := func(r *http.Request) (string, string, bool) {
		id, ok := sessions.Identity(r)
		return id.UserID, id.Username, ok
	}
	console := clients.New(store, logger, signedIn, newPage)
	console.Audit = auditLog
	console.Mount(mux)
	if cfg.DynamicRegistration {
		reg := clients.NewRegistrationEndpoint(store, logger)
		reg.InitialAccessToken = cfg.RegistrationToken
		reg.Audit = auditLog
		reg.Limit = &clients.RegistrationLimit{Store: store, Max: registrationsPerHour, Window: time.Hour,
			Address: func(r *http.Request) string { return accounts.LimitAddress(r, cfg.TrustedProxies) }}
		mux.Handle("POST /oauth2/register", reg)
	}
	bh := books.New(store, oauth.UserID, logger)
	bh.Changes = oauth.BookChanges
	bh.Mount(mux, oauthHandler.RequireScope("books:read"), oauthHandler.RequireScope("books:write"))
	mcpHandler := oauthHandler.Require(oauth.MCP, "")(mcp.New(mcp.Config{
		Store: store,
		Identity: func(r *http.Request) (string, []string) {
			p, _ := oauth.PrincipalFrom(r.Context())
			return p.UserID, p.Scopes
		},
		Denied:           oauthHandler.InsufficientScope(oauth.MCP),
		ResourceMetadata: oauthHandler.MetadataURL(oauth.MCP),
		Logger:           logger,
		Version:          "1",
	}))
	mux.Handle("POST /mcp", mcpHandler)
	mux.Handle("GET /mcp", mcpHandler)
	mux.Handle("DELETE /mcp", mcpHandler)
	mux.Handle("GET /static/", web.StaticHandler())
	mux.Handle("GET /openapi.json", openapi.Handler())
	mux.Handle("GET /metrics", m.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := store.Ping(pctx); err != nil {
			logger.WarnContext(r.Context(), "database not ready", "err", err)
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})

	// Browsers must not post forms across sites; the JSON endpoints are
	// exempt because apps in other origins call them by design and they
	// carry no ambient credentials (client secrets, codes or bearer tokens
	// are sent explicitly). Relying parties may post sign-out requests, so
	// POST /oauth2/logout checks the origin itself, and only where it ends
	// a session on the user's confirmation.
	cop := http.NewCrossOriginProtection()
	for _, p := range []string{"POST /oauth2/token", "POST /oauth2/revoke", "POST /oauth2/introspect", "POST /oauth2/register", "POST /oauth2/device/authorize", "POST /oauth2/logout", "POST /userinfo", "/api/"} {
		cop.AddInsecureBypassPattern(p)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Cross-origin form posts are not accepted.", http.StatusForbidden)
	}))
	notFoundPage := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := templates.Write(r.Context(), w, http.StatusNotFound, templates.NotFound(newPage(r, "Page not found"))); err != nil {
			logger.ErrorContext(r.Context(), "render page", "err", err)
		}
	})
	notFoundJSON := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"not_found","error_description":"There is no endpoint at this path."}`+"\n")
	})
	routes := notFound(notFoundPage, notFoundJSON, cop.Handler(mux))
	// Outermost, because it hands a new request on and the logging reads
	// the pattern the mux sets on the request it gets.
	return sessions.Middleware(withLogging(logger, m, withAuditRequest(cfg.TrustedProxies, recoverPanics(logger, securityHeaders(secure, routes))))), oauthHandler, nil
}

// registrationsPerHour is how many dynamic registration requests one
// address (an IPv6 /64) may make in an hour.
const registrationsPerHour = 20

// derive turns the system secret into an independent key for one purpose,
// so a key leaked from one use says nothing of the others.
func derive(secret []byte, purpose string) []byte {
	key, err := hkdf.Key(sha256.New, secret, nil, "gatehouse/"+purpose, 32)
	if err != nil {
		// hkdf.Key fails only for lengths beyond 255*32 bytes.
		panic(err)
	}
	return key
}

// totpSealKeys seal authenticator app secrets, the current secret's first.
func totpSealKeys(secret []byte, old [][]byte) [][]byte {
	keys := [][]byte{derive(secret, "totp-seal")}
	for _, s := range old {
		keys = append(keys, derive(s, "totp-seal"))
	}
	return keys
}

// cookieKeys are gorilla's hash/encryption pairs, the current secret's
// first.
func cookieKeys(secret []byte, old [][]byte) [][]byte {
	var pairs [][]byte
	for _, s := range append([][]byte{secret}, old...) {
		pairs = append(pairs, derive(s, "cookie-hash"), derive(s, "cookie-encryption"))
	}
	return pairs
}

// cleanup deletes expired codes and tokens, old failed sign-ins and audit
// events older than auditRetention (0 keeps them). Every instance runs it;
// the deletes are idempotent, so running it twice at once costs only time.
func cleanup(ctx context.Context, store storage.Store, every, auditRetention time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := store.DeleteExpired(ctx, time.Now())
			if err != nil {
				if ctx.Err() == nil {
					logger.Warn("delete expired tokens", "err", err)
				}
				continue
			}
			logger.Debug("deleted expired tokens", "rows", n)
			if auditRetention > 0 {
				if n, err := store.DeleteAuditEventsBefore(ctx, time.Now().Add(-auditRetention)); err != nil && ctx.Err() == nil {
					logger.Warn("delete old audit events", "err", err)
				} else if n > 0 {
					logger.Debug("deleted old audit events", "rows", n)
				}
			}
		}
	}
}

func describeDB(dsn string) string {
	if isPostgres(dsn) {
		return "postgres"
	}
	return dsn
}
