package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// cmdIO is what a command reads and writes.
type cmdIO struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one node of the command line: a group of subcommands or a
// command that runs. Help is generated from it, so what `--help` says is
// what the command takes.
type command struct {
	name string
	// args follows the command's name in its usage line, e.g. "ID [flags]".
	args    string
	summary string
	// about is the help text's paragraph under the usage line.
	about string
	sub   []*command
	// flags declares the command's own flags on fs and returns the
	// function that runs it with the positional arguments. Commands that
	// open the database declare the shared flags through newFlagSet.
	flags func(fs *flag.FlagSet, cfg *config) func(ctx context.Context, io cmdIO, args []string) error
	// server says the command takes serverFlags too.
	server bool
	// noDB says the command has no --db (help, for one).
	noDB bool
}

// commands is the command line, in the order help lists it.
func commands() *command {
	return &command{
		name:    "server",
		summary: "Gatehouse, an OAuth 2 and OpenID Connect authorization server",
		about: "Run without a command, server serves (same as server serve). Every flag can be\n" +
			"given after the command's name or as an environment variable: GATEHOUSE_ and the\n" +
			"flag's name in upper case, dashes as underscores (--db is GATEHOUSE_DB).",
		sub: []*command{
			serveCommand(),
			migrateCommand(),
			usersCommand(),
			clientsCommand(),
			keysCommand(),
			auditCommand(),
		},
	}
}

// run is the whole program; main only supplies the process's environment,
// so tests run exactly what main runs.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cio := cmdIO{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := commands()
	switch {
	case len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version"):
		fmt.Fprintln(stdout, version())
		return nil
	case len(args) > 0 && args[0] == "help":
		path, c, err := root.find(args[1:])
		if err != nil {
			return err
		}
		return c.help(stdout, path)
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help"):
		return root.help(stdout, nil)
	case len(args) == 0 || strings.HasPrefix(args[0], "-"):
		args = append([]string{"serve"}, args...)
	}
	return root.exec(ctx, cio, nil, args)
}

// find walks names down the tree, for `server help clients create`.
func (c *command) find(names []string) ([]string, *command, error) {
	var path []string
	for _, n := range names {
		next := c.child(n)
		if next == nil {
			return nil, nil, c.unknown(path, n)
		}
		path, c = append(path, n), next
	}
	return path, c, nil
}

func (c *command) child(name string) *command {
	for _, s := range c.sub {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (c *command) unknown(path []string, name string) error {
	var names []string
	for _, s := range c.sub {
		names = append(names, s.name)
	}
	return fmt.Errorf("unknown command %q (want %s; see '%s --help')", strings.Join(append(path, name), " "), strings.Join(names, ", "), usageName(path))
}

// exec runs the command args name, path being the names already read.
func (c *command) exec(ctx context.Context, cio cmdIO, path []string, args []string) error {
	if c.sub != nil {
		if len(args) == 0 {
			c.help(cio.stderr, path)
			return fmt.Errorf("%s needs a command", usageName(path))
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
			return c.help(cio.stdout, path)
		}
		next := c.child(args[0])
		if next == nil {
			return c.unknown(path, args[0])
		}
		return next.exec(ctx, cio, append(path, args[0]), args[1:])
	}
	fs, runFn := c.flagSet(path)
	rest, err := parseArgs(fs, args, cio.getenv)
	if errors.Is(err, errHelp) {
		return c.help(cio.stdout, path)
	}
	if err != nil {
		return err
	}
	return runFn(ctx, cio, rest)
}

// flagSet declares the command's flags and returns its run function.
func (c *command) flagSet(path []string) (*flag.FlagSet, func(context.Context, cmdIO, []string) error) {
	cfg := &config{}
	var fs *flag.FlagSet
	if c.noDB {
		fs = flag.NewFlagSet(usageName(path), flag.ContinueOnError)
		fs.SetOutput(io.Discard)
	} else {
		fs = newFlagSet(usageName(path), cfg, io.Discard)
	}
	if c.server {
		serverFlags(fs, cfg)
	}
	return fs, c.flags(fs, cfg)
}

func usageName(path []string) string {
	return strings.Join(append([]string{"server"}, path...), " ")
}

// help writes the command's help: its usage, what it does, its commands
// or its flags with their environment variables and defaults.
func (c *command) help(w io.Writer, path []string) error {
	name := usageName(path)
	usage := name
	switch {
	case c.sub != nil && len(path) == 0:
		usage += " [command] [flags]"
	case c.sub != nil:
		usage += " <command> [flags]"
	case c.args != "":
		usage += " " + c.args
	default:
		usage += " [flags]"
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s%s.\n", usage, strings.ToUpper(c.summary[:1]), c.summary[1:])
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", c.about)
	}
	if c.sub != nil {
		fmt.Fprintf(w, "\nCommands:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range c.sub {
			fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.summary)
		}
		if len(path) == 0 {
			fmt.Fprintf(tw, "  help\tshow a command's help: server help clients create\n")
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", name)
		if len(path) == 0 {
			fmt.Fprintf(w, "Run 'server --version' for the version.\n")
		}
		return nil
	}
	fs, _ := c.flagSet(path)
	env := map[string]bool{}
	for _, f := range configFlags() {
		env[f.Name] = true
	}
	var own, shared []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if env[f.Name] {
			shared = append(shared, f)
		} else {
			own = append(own, f)
		}
	})
	writeFlags(w, "Flags", own, false)
	writeFlags(w, "Settings (flag, or environment variable)", shared, true)
	return nil
}

func writeFlags(w io.Writer, heading string, flags []*flag.Flag, withEnv bool) {
	if len(flags) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", heading)
	for _, f := range flags {
		kind, usage := flag.UnquoteUsage(f)
		usage, def := splitDefault(usage, f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
		var notes []string
		if withEnv {
			notes = append(notes, "env "+envName(f.Name))
		}
		if def != "" {
			notes = append(notes, "default "+def)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "      (%s)\n", strings.Join(notes, "; "))
		}
	}
}

// splitDefault returns a flag's usage and its default for people: a
// "(default: …)" at the end of the usage, which describes a default that
// is computed, or else the flag's own default unless it is empty or off.
func splitDefault(usage string, f *flag.Flag) (string, string) {
	if i := strings.LastIndex(usage, " (default: "); i >= 0 && strings.HasSuffix(usage, ")") {
		return usage[:i], usage[i+len(" (default: ") : len(usage)-1]
	}
	if slices.Contains([]string{"", "false", "0", "[]"}, f.DefValue) {
		return usage, ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, ok := g.Get().(time.Duration); ok {
			// 720h, as people write it, rather than 720h0m0s.
			d := f.DefValue
			if strings.HasSuffix(d, "m0s") {
				d = strings.TrimSuffix(d, "0s")
			}
			if strings.HasSuffix(d, "h0m") {
				d = strings.TrimSuffix(d, "0m")
			}
			return usage, d
		}
	}
	return usage, f.DefValue
}

// version is the module version and the VCS revision the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "gatehouse (no build information)"
	}
	v := "gatehouse " + info.Main.Version
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += " revision " + rev
		if t := settings["vcs.time"]; t != "" {
			v += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			v += " with local changes"
		}
	}
	return v + ", " + info.GoVersion
}
