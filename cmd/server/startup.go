package main

import (
	"log/slog"
	"net"
	"net/url"
	"strings"
)

// announce logs one line per setting an operator checks first, then a
// warning for each risky combination of them.
func announce(logger *slog.Logger, cfg config) {
	logger.Info("issuer", "url", cfg.Issuer)
	if isPostgres(cfg.DB) {
		host, name, tls := describePostgres(cfg.DB)
		logger.Info("database", "engine", "postgres", "host", host, "database", name, "tls", tls)
	} else {
		logger.Info("database", "engine", "sqlite", "path", cfg.DB)
	}
	logger.Info("features",
		"registration", onOffText(cfg.Registration),
		"dynamic_registration", onOffText(cfg.DynamicRegistration),
		"require_pkce", onOffText(cfg.RequirePKCE),
		"allow_query_token", onOffText(cfg.AllowQueryToken),
		"trusted_proxies", len(cfg.TrustedProxies),
		"audit_retention", cfg.AuditRetention.String())
	for _, w := range warnings(cfg) {
		logger.Warn(w)
	}
}

// warnings are the settings that work but that an operator most likely
// did not mean.
func warnings(cfg config) []string {
	var ws []string
	if u, err := url.Parse(cfg.Issuer); err == nil && u.Scheme == "http" {
		listen, _, _ := net.SplitHostPort(cfg.Addr)
		if !isLocalHost(u.Hostname()) || !isLocalHost(listen) {
			ws = append(ws, "http issuer on a non-loopback address: passwords, cookies and tokens cross the network unencrypted; serve an https issuer (TLS at a balancer is fine)")
		}
	}
	if cfg.DynamicRegistration && cfg.RegistrationToken == "" {
		ws = append(ws, "dynamic registration is on without --registration-token: anyone who can reach POST /oauth2/register can create clients")
	}
	if isPostgres(cfg.DB) {
		if host, _, tls := describePostgres(cfg.DB); !tls && !isLocalHost(host) {
			ws = append(ws, "PostgreSQL at "+host+" without TLS: add sslmode=verify-full (or require) to --db")
		}
	}
	return ws
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// isLocalHost reports a name or address that never leaves the machine. An
// empty host (":8080") listens on every interface, so it is not local.
func isLocalHost(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// describePostgres returns the host and database of a postgres:// URL,
// never its password, and whether TLS is required: pgx's default, prefer,
// falls back to plain text.
func describePostgres(dsn string) (host, name string, tls bool) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)", "", false
	}
	host = u.Hostname()
	if h := u.Query().Get("host"); host == "" && h != "" {
		host = h
	}
	switch u.Query().Get("sslmode") {
	case "require", "verify-ca", "verify-full":
		tls = true
	}
	return host, strings.TrimPrefix(u.Path, "/"), tls
}
