package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"gatehouse/storage/sqlstore"
)

// config is every setting of the server and its subcommands. Each flag
// falls back to an environment variable: GATEHOUSE_ and the flag's name in
// upper case with dashes as underscores.
type config struct {
	Addr                string
	Issuer              string
	DB                  string
	DBMaxConns          int
	Secret              string
	OldSecrets          []string
	AccessTokenTTL      time.Duration
	RefreshTokenTTL     time.Duration
	CodeTTL             time.Duration
	AllowQueryToken     bool
	RequirePKCE         bool
	Registration        bool
	DynamicRegistration bool
	LogFormat           string
	LogLevel            string
	CleanupInterval     time.Duration
	TrustedProxies      []netip.Prefix
	SMTPURL             string
	MailFrom            string
}

// newFlagSet declares the flags shared by the server and every subcommand,
// so `server clients list --db …` reads the same database as the server.
func newFlagSet(name string, cfg *config, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.DB, "db", "data/gatehouse.db", "an SQLite file path, or a postgres:// URL")
	fs.IntVar(&cfg.DBMaxConns, "db-max-conns", sqlstore.DefaultMaxOpenConns, "PostgreSQL connections per instance, kept open when idle too")
	fs.StringVar(&cfg.Secret, "secret", "", "system secret, at least 32 bytes (default: generated once next to the SQLite file)")
	fs.Func("old-secrets", "comma-separated former secrets, still accepted for verification", func(s string) error {
		cfg.OldSecrets = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				cfg.OldSecrets = append(cfg.OldSecrets, v)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	return fs
}

// serverFlags adds the flags only the server itself reads.
func serverFlags(fs *flag.FlagSet, cfg *config) {
	fs.StringVar(&cfg.Addr, "addr", "localhost:8080", "listen address")
	fs.StringVar(&cfg.Issuer, "issuer", "", "public base URL (default: http:// and the listen address; https issuers get Secure cookies)")
	fs.DurationVar(&cfg.AccessTokenTTL, "access-token-ttl", time.Hour, "access token lifetime")
	fs.DurationVar(&cfg.RefreshTokenTTL, "refresh-token-ttl", 720*time.Hour, "refresh token lifetime")
	fs.DurationVar(&cfg.CodeTTL, "code-ttl", 10*time.Minute, "authorization code lifetime")
	fs.BoolVar(&cfg.AllowQueryToken, "allow-query-token", false, "accept ?access_token= on resource endpoints (RFC 6750 §2.3)")
	fs.BoolVar(&cfg.RequirePKCE, "require-pkce", false, "require PKCE from confidential clients too")
	fs.Func("registration", "on or off: whether /register lets new users sign up (default on)", func(s string) error {
		switch s {
		case "on", "true", "1":
			cfg.Registration = true
		case "off", "false", "0":
			cfg.Registration = false
		default:
			return errors.New("want on or off")
		}
		return nil
	})
	cfg.Registration = true
	fs.BoolVar(&cfg.DynamicRegistration, "dynamic-registration", false, "enable RFC 7591 client registration at POST /oauth2/register")
	fs.Func("trusted-proxies", "comma-separated addresses or CIDR ranges of load balancers whose X-Forwarded-For names the client", func(s string) error {
		cfg.TrustedProxies = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return fmt.Errorf("%q is neither an address nor a CIDR range", v)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			cfg.TrustedProxies = append(cfg.TrustedProxies, p.Masked())
		}
		return nil
	})
	fs.StringVar(&cfg.SMTPURL, "smtp-url", "", "SMTP relay for verification and password reset mail: smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://… (default: no mail)")
	fs.StringVar(&cfg.MailFrom, "mail-from", "", "From address of the mail, for example \"Gatehouse <noreply@example.com>\"")
	fs.DurationVar(&cfg.CleanupInterval, "cleanup-interval", 10*time.Minute, "how often expired codes and tokens are deleted")
}

// parse reads args, then fills every flag not given on the command line
// from its environment variable.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

// validate checks the server's settings at start-up.
func (c *config) validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"access-token-ttl": c.AccessTokenTTL, "refresh-token-ttl": c.RefreshTokenTTL, "code-ttl": c.CodeTTL, "cleanup-interval": c.CleanupInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive", name))
		}
	}
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "/") {
			errs = append(errs, fmt.Errorf("--issuer %q must be an http(s) URL with a host and no trailing slash, query or fragment", c.Issuer))
		}
	}
	if c.DBMaxConns <= 0 {
		errs = append(errs, fmt.Errorf("--db-max-conns must be positive"))
	}
	if (c.SMTPURL == "") != (c.MailFrom == "") {
		errs = append(errs, fmt.Errorf("--smtp-url and --mail-from go together"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json"))
	}
	return errors.Join(errs...)
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
