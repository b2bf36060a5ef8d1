package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gatehouse/accounts"
	"gatehouse/oauth"
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
	RefreshGrace        time.Duration
	AllowQueryToken     bool
	RequirePKCE         bool
	Registration        bool
	DynamicRegistration bool
	RequirePAR          bool
	DPoPNonce           bool
	RegistrationToken   string
	LogFormat           string
	LogLevel            string
	CleanupInterval     time.Duration
	TrustedProxies      []netip.Prefix
	SMTPURL             string
	MailFrom            string
	SessionLifetime     time.Duration
	SessionIdleTimeout  time.Duration
	// now is the server's clock for sessions and sign-in limits; nil is
	// time.Now. Tests set it to travel in time.
	now func() time.Time
	// codeNow is the clock of authenticator app codes; nil is now. Tests
	// step it to use a code per time step without waiting for the next.
	codeNow        func() time.Time
	AuditRetention time.Duration
	// ClientMetadataDocuments and ClientMetadataAllowLoopback: client_id
	// URLs naming metadata documents, and (development only) on loopback.
	ClientMetadataDocuments     bool
	ClientMetadataAllowLoopback bool
}

// newFlagSet declares the flags shared by the server and every subcommand,
// so `server clients list --db …` reads the same database as the server.
func newFlagSet(name string, cfg *config, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.DB, "db", defaultDB, "an SQLite file path, or a postgres:// URL")
	fs.IntVar(&cfg.DBMaxConns, "db-max-conns", sqlstore.DefaultMaxOpenConns, "PostgreSQL connections per instance, kept open when idle too")
	fs.StringVar(&cfg.Secret, "secret", "", "system secret, at least 32 bytes; required with PostgreSQL (default: generated once next to the SQLite file)")
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
	fs.StringVar(&cfg.Issuer, "issuer", "", "public base URL; https issuers get Secure cookies (default: http:// and the listen address)")
	fs.DurationVar(&cfg.AccessTokenTTL, "access-token-ttl", time.Hour, "access token lifetime")
	fs.DurationVar(&cfg.RefreshTokenTTL, "refresh-token-ttl", 720*time.Hour, "refresh token lifetime")
	fs.DurationVar(&cfg.CodeTTL, "code-ttl", 10*time.Minute, "authorization code lifetime")
	fs.DurationVar(&cfg.RefreshGrace, "refresh-grace", 0, "how long a rotated refresh token presented again by its client gets the same new tokens (0: off, at most 1m)")
	fs.BoolVar(&cfg.AllowQueryToken, "allow-query-token", false, "accept ?access_token= on resource endpoints (RFC 6750 §2.3)")
	fs.BoolVar(&cfg.RequirePKCE, "require-pkce", false, "require PKCE from confidential clients too")
	cfg.Registration = true
	fs.Var(onOff{&cfg.Registration}, "registration", "on or off: whether /register lets new users sign up")
	fs.BoolVar(&cfg.DynamicRegistration, "dynamic-registration", false, "enable RFC 7591 client registration at POST /oauth2/register")
	fs.BoolVar(&cfg.RequirePAR, "require-par", false, "require pushed authorization requests (POST /oauth2/par) from every client")
	fs.BoolVar(&cfg.DPoPNonce, "dpop-nonce", false, "require a server nonce in DPoP proofs (RFC 9449 §8)")
	fs.StringVar(&cfg.RegistrationToken, "registration-token", "", "initial access token that dynamic registration requires as a Bearer token (default: none required)")
	cfg.ClientMetadataDocuments = true
	fs.Var(onOff{&cfg.ClientMetadataDocuments}, "client-metadata-documents", "on or off: accept https URLs naming client metadata documents as client_id")
	fs.BoolVar(&cfg.ClientMetadataAllowLoopback, "client-metadata-allow-loopback", false, "also fetch client metadata documents over http and from loopback addresses (development and tests only)")
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
	fs.DurationVar(&cfg.SessionLifetime, "session-lifetime", accounts.DefaultSessionLifetime, "how long a sign-in lasts, however active")
	fs.DurationVar(&cfg.SessionIdleTimeout, "session-idle-timeout", accounts.DefaultSessionIdleTimeout, "how long a sign-in lasts without a request")
	fs.DurationVar(&cfg.CleanupInterval, "cleanup-interval", 10*time.Minute, "how often expired codes and tokens are deleted")
	fs.DurationVar(&cfg.AuditRetention, "audit-retention", 2160*time.Hour, "how long audit events are kept; 0 keeps them forever")
}

// parse reads args, which must hold flags only, then fills every setting
// not given on the command line from its environment variable.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	rest, err := parseArgs(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments: %q", rest)
	}
	return nil
}

// errHelp is what parseArgs returns for -h or --help.
var errHelp = errors.New("help requested")

// parseArgs reads flags wherever they stand among args, as people type
// them (`clients delete ID --db …`), and returns the other arguments. A
// lone "--" ends the flags. Then every setting of newFlagSet and
// serverFlags not given on the command line is read from its environment
// variable; a subcommand's own flags (--name, --username) have none, so
// that a stray GATEHOUSE_NAME cannot fill them.
func parseArgs(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if name == "h" || name == "help" {
			return nil, errHelp
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, fmt.Errorf("unknown flag --%s (see '%s --help')", name, fs.Name())
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && !hasValue {
			value = "true"
		} else if !hasValue {
			if i+1 == len(args) {
				return nil, fmt.Errorf("--%s needs a value (see '%s --help')", name, fs.Name())
			}
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return nil, invalidValue("--"+name, f, value, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	for _, f := range configFlags() {
		if set[f.Name] || fs.Lookup(f.Name) == nil {
			continue
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, invalidValue(envName(f.Name), f, v, err))
			}
		}
	}
	return rest, errors.Join(errs...)
}

// envName is the environment variable of a configuration flag.
func envName(flagName string) string {
	return "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configFlags are the flags of newFlagSet and serverFlags, the ones with
// an environment variable, in name order.
func configFlags() []*flag.Flag {
	var cfg config
	fs := newFlagSet("server", &cfg, io.Discard)
	serverFlags(fs, &cfg)
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	return flags
}

// invalidValue says which setting was wrong, what it was given and what
// it takes. The value is left out where it may be a secret.
func invalidValue(source string, f *flag.Flag, value string, err error) error {
	shown := strconv.Quote(value)
	if isSecretFlag(f.Name) {
		shown = "(value not shown)"
	}
	var v any
	if g, ok := f.Value.(flag.Getter); ok {
		v = g.Get()
	}
	switch v.(type) {
	case time.Duration:
		return fmt.Errorf("%s: invalid duration %s (want e.g. 1h, 30m)", source, shown)
	case int, int64, uint, uint64:
		return fmt.Errorf("%s: invalid number %s (want a whole number, e.g. 10)", source, shown)
	case bool:
		return fmt.Errorf("%s: invalid value %s (want true or false)", source, shown)
	}
	return fmt.Errorf("%s: invalid value %s (%v)", source, shown, err)
}

func isSecretFlag(name string) bool {
	return strings.Contains(name, "secret") || strings.Contains(name, "password") || strings.HasSuffix(name, "-token")
}

// onOff is a switch written on or off (true and false work too).
type onOff struct{ p *bool }

func (o onOff) String() string {
	if o.p != nil && *o.p {
		return "on"
	}
	return "off"
}

func (o onOff) Set(s string) error {
	switch s {
	case "on", "true", "1":
		*o.p = true
	case "off", "false", "0":
		*o.p = false
	default:
		return errors.New("want on or off")
	}
	return nil
}

// validate checks the server's settings at start-up.
func (c *config) validate() error {
	var errs []error
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"access-token-ttl", c.AccessTokenTTL}, {"refresh-token-ttl", c.RefreshTokenTTL}, {"code-ttl", c.CodeTTL}, {"cleanup-interval", c.CleanupInterval},
		{"session-lifetime", c.SessionLifetime}, {"session-idle-timeout", c.SessionIdleTimeout}} {
		if d.value <= 0 {
			errs = append(errs, fmt.Errorf("--%s (%s): %s is not positive (want e.g. 1h, 30m)", d.flag, envName(d.flag), d.value))
		}
	}
	if c.AuditRetention < 0 {
		errs = append(errs, fmt.Errorf("--audit-retention (GATEHOUSE_AUDIT_RETENTION): %s is negative (want e.g. 2160h, or 0 to keep events forever)", c.AuditRetention))
	}
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "/") {
			errs = append(errs, fmt.Errorf("--issuer (GATEHOUSE_ISSUER): invalid URL %q (want an http(s) URL with a host and no trailing slash, query or fragment, e.g. https://login.example.com)", c.Issuer))
		}
	}
	if c.RegistrationToken != "" && !c.DynamicRegistration {
		errs = append(errs, fmt.Errorf("--registration-token needs --dynamic-registration"))
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > oauth.MaxRefreshGrace {
		errs = append(errs, fmt.Errorf("--refresh-grace (GATEHOUSE_REFRESH_GRACE): %s is out of range (want 0, which is off, up to %s)", c.RefreshGrace, oauth.MaxRefreshGrace))
	}
	if c.DBMaxConns <= 0 {
		errs = append(errs, fmt.Errorf("--db-max-conns (GATEHOUSE_DB_MAX_CONNS): %d is not positive (want e.g. 10)", c.DBMaxConns))
	}
	if (c.SMTPURL == "") != (c.MailFrom == "") {
		errs = append(errs, fmt.Errorf("--smtp-url (GATEHOUSE_SMTP_URL) and --mail-from (GATEHOUSE_MAIL_FROM) go together: give both or neither"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format (GATEHOUSE_LOG_FORMAT): invalid value %q (want text or json)", c.LogFormat))
	}
	if err := checkDBPath(c.DB); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// defaultDB is the --db a fresh install runs on.
const defaultDB = "data/gatehouse.db"

// checkDBPath refuses an SQLite path whose folder is missing: a mistyped
// path would otherwise start an empty server. Only the default data/
// folder is created on first start.
func checkDBPath(db string) error {
	if isPostgres(db) || db == defaultDB {
		return nil
	}
	dir := filepath.Dir(db)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--db (GATEHOUSE_DB): the folder of %q does not exist (create it first with mkdir -p %s, or fix the path)", db, dir)
	case err != nil:
		return fmt.Errorf("--db (GATEHOUSE_DB): %w", err)
	case !fi.IsDir():
		return fmt.Errorf("--db (GATEHOUSE_DB): %s in %q is not a folder", dir, db)
	}
	return nil
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
