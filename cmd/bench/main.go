// Command bench measures Gatehouse under load: it builds ./cmd/server,
// runs it on a fresh database as main does, prepares users, clients,
// grants and tokens, and drives each scenario with concurrent keep-alive
// clients over loopback HTTP beside a bare net/http handler, the ceiling.
// See README.md in this folder.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	c, flowC   int
	d          time.Duration
	scenarios  map[int]bool
	postgres   string
	flowScope  string
	tokens     int
	users      int
	verbose    bool
	binary     string
	executable string
	tmp        string
}

// scenario is one row of the table.
type scenario struct {
	id   int
	name string
	// flow scenarios run with the smaller -flow-c and report flows/s.
	flow bool
	// requests is how many HTTP requests one operation makes; post says
	// whether they are compared with the POST ceiling.
	requests int
	post     bool
	// of is the scenario this one is a variant of, 0 for none: the table
	// is followed by the ratio of their server CPU per operation.
	of int
}

var allScenarios = []scenario{
	{1, "GET /api/books (bearer, 20 books)", false, 1, false, 0},
	{2, "POST /oauth2/token client_credentials", false, 1, true, 0},
	{3, "returning-user code flow (authorize + token)", true, 2, true, 0},
	{4, "first-time flow (login + consent + token)", true, 4, true, 0},
	{5, "refresh-token rotation", false, 1, true, 0},
	{6, "POST /oauth2/introspect", false, 1, true, 0},
	{7, "scenario 1 with many tokens and users", false, 1, false, 0},
	{8, "scenario 3 with an ES256 ID token", true, 2, true, 3},
	{9, "GET /api/books (DPoP-bound bearer, 20 books)", false, 1, false, 1},
	{10, "device-code poll (authorization_pending)", false, 1, true, 0},
}

// row is one printed line.
type row struct {
	backend  string
	name     string
	c        int
	unit     string
	res      result
	logProbs int
	// firstProblem is the first server log line counted in logProbs.
	firstProblem string
	locked       int
	rss          int64
	ratio        float64
	// id and of are the scenario's and the one it is a variant of.
	id, of int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == ceilingFlag {
		if err := serveCeiling(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := benchMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var list string
	var short bool
	fs.IntVar(&o.c, "c", 50, "concurrent clients for scenarios 1, 2, 5, 6, 7, 9, 10 and the ceiling")
	fs.IntVar(&o.flowC, "flow-c", 8, "concurrent clients for the flow scenarios 3, 4 and 8")
	fs.DurationVar(&o.d, "d", 10*time.Second, "measured duration of each scenario (after a warm-up of a fifth of it, at most 1s)")
	fs.StringVar(&o.flowScope, "flow-scope", "openid offline_access books:read books:write", "the scope the flows of scenarios 3, 4 and 8 ask for; with openid each gets an ID token, RS256 in 3 and 4, ES256 in 8")
	fs.StringVar(&list, "scenarios", "1,2,3,4,5,6,7,8,9,10", "comma-separated scenarios to run")
	fs.StringVar(&o.postgres, "postgres", "", "also run on this PostgreSQL database (postgres:// URL; use a throwaway database: the bench leaves its rows there)")
	fs.IntVar(&o.tokens, "tokens", 1_000_000, "live access tokens in the database for scenario 7")
	fs.IntVar(&o.users, "users", 100_000, "users in the database for scenario 7")
	fs.BoolVar(&short, "short", false, "a quick run that checks every scenario still works (-d 1s, 20,000 tokens and 2,000 users for scenario 7) unless flags say otherwise")
	fs.BoolVar(&o.verbose, "v", false, "report preparation steps")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["d"] {
			o.d = time.Second
		}
		if !set["tokens"] {
			o.tokens = 20_000
		}
		if !set["users"] {
			o.users = 2_000
		}
	}
	o.scenarios = map[int]bool{}
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > len(allScenarios) {
			return fmt.Errorf("-scenarios: %q is not a scenario from 1 to %d", s, len(allScenarios))
		}
		o.scenarios[n] = true
	}
	if o.c < 1 || o.flowC < 1 || o.d <= 0 {
		return errors.New("-c, -flow-c and -d must be positive")
	}

	var err error
	if o.tmp, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(o.tmp)
	if o.executable, err = os.Executable(); err != nil {
		return err
	}
	o.logf(stderr, "building ./cmd/server")
	if o.binary, err = buildServer(ctx, o.tmp); err != nil {
		return err
	}

	getCeil, postCeil, err := measureCeiling(ctx, o)
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	rows := []row{getCeil, postCeil}
	// The server refuses an SQLite path whose folder is missing.
	if err := os.Mkdir(filepath.Join(o.tmp, "sqlite"), 0o700); err != nil {
		return err
	}
	backends := [][2]string{{"sqlite", filepath.Join(o.tmp, "sqlite", "gatehouse.db")}}
	if o.postgres != "" {
		backends = append(backends, [2]string{"postgres", o.postgres})
	}
	for _, be := range backends {
		r, err := runBackend(ctx, o, be[0], be[1], getCeil.res.rate(), postCeil.res.rate(), stderr)
		rows = append(rows, r...)
		if err != nil {
			printTable(stdout, o, rows)
			return fmt.Errorf("%s: %w", be[0], err)
		}
	}
	printTable(stdout, o, rows)
	for _, r := range rows {
		if r.res.errors > 0 || r.locked > 0 || r.res.ops == 0 {
			return errors.New("some scenarios failed; see above")
		}
	}
	return nil
}

func (o options) logf(w io.Writer, format string, args ...any) {
	if o.verbose {
		fmt.Fprintf(w, "bench: "+format+"\n", args...)
	}
}

// measureCeiling runs the bare handler in a child process and loads it as
// the GET and POST scenarios load Gatehouse.
func measureCeiling(ctx context.Context, o options) (get, post row, err error) {
	p, err := startProcess(ctx, filepath.Join(o.tmp, "ceiling.log"), o.executable, ceilingFlag)
	if err != nil {
		return row{}, row{}, err
	}
	defer p.stop()
	g := &gate{url: p.URL, http: newHTTPClient(o.c)}
	measure := func(name string, op op) row {
		p.resetPeakRSS()
		res := run(ctx, o.c, o.d, op, p)
		return row{backend: "bare net/http", name: name, c: o.c, unit: "req/s", res: res, rss: p.peakRSS(), ratio: 1}
	}
	get = measure("ceiling: GET", func(ctx context.Context, _ int) error {
		resp, _, err := g.do(ctx, "GET", "/get", nil, nil)
		if err != nil {
			return err
		}
		return expect(resp, 200)
	})
	form := map[string][]string{"grant_type": {"client_credentials"}, "scope": {""}}
	post = measure("ceiling: form POST", func(ctx context.Context, _ int) error {
		resp, _, err := g.do(ctx, "POST", "/post", form, nil)
		if err != nil {
			return err
		}
		return expect(resp, 200)
	})
	return get, post, nil
}

func printTable(w io.Writer, o options, rows []row) {
	fmt.Fprintf(w, "gatehouse bench: %s, %d CPUs, -c %d -flow-c %d -d %s -flow-scope %q\n\n", runtime.Version(), runtime.NumCPU(), o.c, o.flowC, o.d, o.flowScope)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "backend\tscenario\tC\trate\tunit\tp50\tp99\terrors\tlog warn+\tlocked\tpeak RSS\tserver CPU/op\tratio\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%d\t%d\t%.1f MB\t%d µs\t%.3f\t\n",
			r.backend, r.name, r.c, r.res.rate(), r.unit, ms(r.res.p50), ms(r.res.p99),
			r.res.errors, r.logProbs, r.locked, float64(r.rss)/(1<<20), r.res.cpuPerOp().Microseconds(), r.ratio)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratio: HTTP requests/s over the bare handler's, GET or form POST as the scenario's requests mostly are;")
	fmt.Fprintln(w, "a flow counts every request it makes. log warn+: server log lines at WARN or ERROR during the scenario.")
	fmt.Fprintln(w, "server CPU/op: the server process's CPU time per request or flow, steadier than the rate on a busy machine.")
	for _, r := range rows {
		if r.of == 0 {
			continue
		}
		for _, base := range rows {
			if base.backend == r.backend && base.id == r.of && base.res.cpuPerOp() > 0 {
				fmt.Fprintf(w, "%s: scenario %d over scenario %d: server CPU/op %.2f×, rate %.2f×\n", r.backend, r.id, r.of,
					float64(r.res.cpuPerOp())/float64(base.res.cpuPerOp()), r.res.rate()/base.res.rate())
			}
		}
	}
	for _, r := range rows {
		if r.res.firstErr != nil {
			fmt.Fprintf(w, "first error in %s %q: %v\n", r.backend, r.name, r.res.firstErr)
		}
		if r.firstProblem != "" {
			fmt.Fprintf(w, "first server warning in %s %q: %s\n", r.backend, r.name, r.firstProblem)
		}
	}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + " ms"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
