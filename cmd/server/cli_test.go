package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/help/*.txt and the README's configuration table from the code")

// cliResult is what one run of the command line printed.
type cliResult struct {
	stdout, stderr string
	err            error
}

// runCmd runs the command line as main does, with env as the whole
// environment.
func runCmd(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	// A server that starts when the test meant it not to stops here.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	return cliResult{stdout.String(), stderr.String(), err}
}

// mustRunCmd runs the command line and fails the test on an error.
func mustRunCmd(t *testing.T, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	r := runCmd(t, env, stdin, args...)
	if r.err != nil {
		t.Fatalf("server %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r.stdout
}

// commandPaths lists every command of the tree, groups included.
func commandPaths(c *command, path []string) [][]string {
	paths := [][]string{path}
	for _, s := range c.sub {
		paths = append(paths, commandPaths(s, append(append([]string(nil), path...), s.name))...)
	}
	return paths
}

// TestHelpGolden checks every command's help against testdata/help, the
// three ways of asking for it alike, on stdout with a nil error (exit 0).
// Run with -update after changing a command or a flag.
func TestHelpGolden(t *testing.T) {
	for _, path := range commandPaths(commands(), nil) {
		name := strings.Join(append([]string{"server"}, path...), "_")
		t.Run(name, func(t *testing.T) {
			help := runCmd(t, nil, "", append(append([]string(nil), path...), "--help")...)
			if help.err != nil || help.stderr != "" {
				t.Fatalf("--help: err %v, stderr %q; want help on stdout and no error", help.err, help.stderr)
			}
			for _, args := range [][]string{append(append([]string(nil), path...), "-h"), append([]string{"help"}, path...)} {
				if r := runCmd(t, nil, "", args...); r.err != nil || r.stdout != help.stdout {
					t.Errorf("server %s: err %v, output differs from --help:\n%s", strings.Join(args, " "), r.err, r.stdout)
				}
			}
			golden := filepath.Join("testdata", "help", name+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(help.stdout), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/server -run TestHelpGolden -update)", err)
			}
			if help.stdout != string(want) {
				t.Errorf("help differs from %s (run go test ./cmd/server -run TestHelpGolden -update if the change is meant):\ngot:\n%s\nwant:\n%s", golden, help.stdout, want)
			}
		})
	}
}

// TestHelpListsEverything checks what help must say beyond the golden
// files: every subcommand, every flag with its environment variable.
func TestHelpListsEverything(t *testing.T) {
	root := mustRunCmd(t, nil, "", "--help")
	for _, c := range commands().sub {
		if !strings.Contains(root, "  "+c.name+" ") {
			t.Errorf("server --help does not list %s:\n%s", c.name, root)
		}
	}
	serveHelp := mustRunCmd(t, nil, "", "help", "serve")
	for _, f := range configFlags() {
		if !strings.Contains(serveHelp, "--"+f.Name) || !strings.Contains(serveHelp, "env "+envName(f.Name)) {
			t.Errorf("server help serve does not show --%s with %s", f.Name, envName(f.Name))
		}
	}
	if !strings.Contains(serveHelp, "default 1h") {
		t.Errorf("server help serve shows no default for --access-token-ttl:\n%s", serveHelp)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		out := mustRunCmd(t, nil, "", arg)
		if !strings.HasPrefix(out, "gatehouse ") || !strings.Contains(out, "go1.") {
			t.Errorf("server %s = %q, want the module version and the Go version", arg, out)
		}
	}
}

// TestConfigErrors checks that each bad setting names the variable or flag,
// the value given and the form wanted, and that no server starts.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "g.db")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"env duration", map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "abc"}, nil,
			`GATEHOUSE_ACCESS_TOKEN_TTL: invalid duration "abc" (want e.g. 1h, 30m)`},
		{"flag duration", nil, []string{"--code-ttl", "10"},
			`--code-ttl: invalid duration "10" (want e.g. 1h, 30m)`},
		{"env number", map[string]string{"GATEHOUSE_DB_MAX_CONNS": "many"}, nil,
			`GATEHOUSE_DB_MAX_CONNS: invalid number "many" (want a whole number, e.g. 10)`},
		{"env bool", map[string]string{"GATEHOUSE_REQUIRE_PKCE": "yes please"}, nil,
			`GATEHOUSE_REQUIRE_PKCE: invalid value "yes please" (want true or false)`},
		{"env on/off", map[string]string{"GATEHOUSE_REGISTRATION": "maybe"}, nil,
			`GATEHOUSE_REGISTRATION: invalid value "maybe" (want on or off)`},
		{"trusted proxies", map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8,lb"}, nil,
			`GATEHOUSE_TRUSTED_PROXIES: invalid value "10.0.0.0/8,lb" ("lb" is neither an address nor a CIDR range)`},
		{"negative ttl", nil, []string{"--refresh-token-ttl", "-1h"},
			`--refresh-token-ttl (GATEHOUSE_REFRESH_TOKEN_TTL): -1h0m0s is not positive (want e.g. 1h, 30m)`},
		{"negative retention", map[string]string{"GATEHOUSE_AUDIT_RETENTION": "-1s"}, nil,
			`--audit-retention (GATEHOUSE_AUDIT_RETENTION): -1s is negative`},
		{"issuer", map[string]string{"GATEHOUSE_ISSUER": "login.example.com/"}, nil,
			`--issuer (GATEHOUSE_ISSUER): invalid URL "login.example.com/" (want an http(s) URL`},
		{"log format", nil, []string{"--log-format", "xml"},
			`--log-format (GATEHOUSE_LOG_FORMAT): invalid value "xml" (want text or json)`},
		{"db max conns", nil, []string{"--db-max-conns", "0"},
			`--db-max-conns (GATEHOUSE_DB_MAX_CONNS): 0 is not positive (want e.g. 10)`},
		{"missing db folder", nil, []string{"--db", filepath.Join(dir, "nope", "g.db")},
			`--db (GATEHOUSE_DB): the folder of "` + filepath.Join(dir, "nope", "g.db") + `" does not exist`},
		{"missing db folder, subcommand", nil, []string{"clients", "list", "--db", filepath.Join(dir, "nope", "g.db")},
			`--db (GATEHOUSE_DB): the folder of "` + filepath.Join(dir, "nope", "g.db") + `" does not exist`},
		{"unknown flag", nil, []string{"clients", "list", "--bd", db},
			`unknown flag --bd (see 'server clients list --help')`},
		{"missing value", nil, []string{"clients", "show", "x", "--db"},
			`--db needs a value (see 'server clients show --help')`},
		{"unknown command", nil, []string{"cleints", "list"},
			`unknown command "cleints" (want serve, migrate, users, clients, keys, audit`},
		{"secret not echoed", map[string]string{"GATEHOUSE_SECRET": "short"}, nil,
			`--secret must be at least 32 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if len(args) == 0 || strings.HasPrefix(args[0], "-") {
				args = append([]string{"--addr", "127.0.0.1:0", "--db", db}, args...)
				if tc.env["GATEHOUSE_SECRET"] == "" {
					args = append(args, "--secret", testSecret)
				}
			}
			r := runCmd(t, tc.env, "", args...)
			if r.err == nil {
				t.Fatalf("server %v: no error, want %q", args, tc.want)
			}
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", r.err, tc.want)
			}
			if strings.Contains(r.err.Error(), "short") && tc.env["GATEHOUSE_SECRET"] != "" {
				t.Errorf("error shows the secret: %q", r.err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Errorf("a missing --db folder was created (stat: %v)", err)
	}
}

// TestFlagsAfterArguments: people put flags after the id.
func TestFlagsAfterArguments(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	var c clientJSON
	out := mustRunCmd(t, nil, "", "clients", "create", "--name", "Shelf", "--redirect-uri", "http://127.0.0.1:9999/cb", "--db", db)
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ClientSecret == "" {
		t.Fatalf("clients create printed %q (%v)", out, err)
	}
	out = mustRunCmd(t, nil, "", "clients", "show", c.ClientID, "--db", db)
	var shown clientJSON
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.Name != "Shelf" || shown.ClientSecret != "" {
		t.Fatalf("clients show printed %q (%v); want the client without its secret", out, err)
	}
	out = mustRunCmd(t, nil, "", "clients", "update", c.ClientID, "--name", "Bookshelf", "--db="+db, "--rotate-secret")
	var updated clientJSON
	if err := json.Unmarshal([]byte(out), &updated); err != nil || updated.Name != "Bookshelf" || updated.ClientSecret == "" || updated.ClientSecret == c.ClientSecret {
		t.Fatalf("clients update printed %q (%v); want the new name and a new secret", out, err)
	}
	if r := runCmd(t, nil, "", "clients", "update", c.ClientID, "--db", db); r.err == nil || !strings.Contains(r.err.Error(), "nothing to change") {
		t.Errorf("clients update without changes: %v", r.err)
	}
	if out := mustRunCmd(t, nil, "", "clients", "delete", c.ClientID, "--db", db); out != "deleted "+c.ClientID+"\n" {
		t.Errorf("clients delete printed %q", out)
	}
	if r := runCmd(t, nil, "", "clients", "show", c.ClientID, "--db", db); r.err == nil || !strings.Contains(r.err.Error(), "no client") {
		t.Errorf("clients show of a deleted client: %v", r.err)
	}
	if r := runCmd(t, nil, "", "clients", "show", "--db", db); r.err == nil || !strings.Contains(r.err.Error(), "usage: server clients show ID") {
		t.Errorf("clients show without an id: %v", r.err)
	}
}

// TestClientsIDTokenAlg: --id-token-alg on create and update, RS256 by
// default, an unknown algorithm refused with the client unchanged.
func TestClientsIDTokenAlg(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	decode := func(out string) clientJSON {
		t.Helper()
		var c clientJSON
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("printed %q: %v", out, err)
		}
		return c
	}
	plain := decode(mustRunCmd(t, nil, "", "clients", "create", "--name", "Plain", "--redirect-uri", "http://127.0.0.1:9999/cb", "--db", db))
	if plain.IDTokenAlg != "RS256" {
		t.Errorf("default id_token_signed_response_alg %q, want RS256", plain.IDTokenAlg)
	}
	c := decode(mustRunCmd(t, nil, "", "clients", "create", "--name", "Shelf", "--redirect-uri", "http://127.0.0.1:9999/cb", "--id-token-alg", "ES256", "--db", db))
	if c.IDTokenAlg != "ES256" {
		t.Fatalf("clients create --id-token-alg ES256 printed %+v", c)
	}
	if c = decode(mustRunCmd(t, nil, "", "clients", "update", c.ClientID, "--id-token-alg", "EdDSA", "--db", db)); c.IDTokenAlg != "EdDSA" || c.Name != "Shelf" {
		t.Fatalf("clients update --id-token-alg EdDSA printed %+v", c)
	}
	if c = decode(mustRunCmd(t, nil, "", "clients", "show", c.ClientID, "--db", db)); c.IDTokenAlg != "EdDSA" {
		t.Fatalf("clients show after the update: %+v", c)
	}
	if r := runCmd(t, nil, "", "clients", "update", c.ClientID, "--id-token-alg", "HS256", "--db", db); r.err == nil || !strings.Contains(r.err.Error(), "RS256, ES256, EdDSA") {
		t.Errorf("clients update --id-token-alg HS256: %v, want a refusal naming the algorithms", r.err)
	}
	if r := runCmd(t, nil, "", "clients", "create", "--name", "Bad", "--redirect-uri", "http://127.0.0.1:9999/cb", "--id-token-alg", "none", "--db", db); r.err == nil || !strings.Contains(r.err.Error(), "id_token_signed_response_alg") {
		t.Errorf("clients create --id-token-alg none: %v, want a refusal", r.err)
	}
	if c = decode(mustRunCmd(t, nil, "", "clients", "show", c.ClientID, "--db", db)); c.IDTokenAlg != "EdDSA" {
		t.Fatalf("a refused update changed the client: %+v", c)
	}
}

func TestUsersListDelete(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	env := map[string]string{"GATEHOUSE_DB": db}
	mustRunCmd(t, env, "correct horse battery\n", "users", "create", "--username", "Alice", "--password-stdin")
	mustRunCmd(t, env, "correct horse battery\n", "users", "create", "--password-stdin", "--username", "bob")
	lines := strings.Split(strings.TrimSpace(mustRunCmd(t, env, "", "users", "list")), "\n")
	var names []string
	for _, l := range lines {
		var u userJSON
		if err := json.Unmarshal([]byte(l), &u); err != nil || u.ID == "" {
			t.Fatalf("users list line %q (%v)", l, err)
		}
		names = append(names, u.Username)
	}
	if strings.Join(names, ",") != "alice,bob" {
		t.Fatalf("users list = %v, want alice,bob", names)
	}
	if out := mustRunCmd(t, env, "", "users", "delete", "--username", "ALICE"); out != "deleted alice\n" {
		t.Errorf("users delete printed %q", out)
	}
	if r := runCmd(t, env, "", "users", "delete", "--username", "alice"); r.err == nil || !strings.Contains(r.err.Error(), `no user "alice"`) {
		t.Errorf("deleting a missing user: %v", r.err)
	}
	if out := mustRunCmd(t, env, "", "users", "list"); strings.Contains(out, "alice") {
		t.Errorf("alice still listed after delete: %s", out)
	}
}
