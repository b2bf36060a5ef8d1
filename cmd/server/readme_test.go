package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

const (
	configBegin = "<!-- configuration table: generated from the flags by go test ./cmd/server -run TestREADMEConfig -update -->"
	configEnd   = "<!-- end of configuration table -->"
)

// configTable is README's Configuration table, one row per flag of
// newFlagSet and serverFlags.
func configTable() []string {
	rows := []string{"| flag | environment | default | meaning |", "|---|---|---|---|"}
	for _, f := range configFlags() {
		_, usage := flag.UnquoteUsage(f)
		described := strings.Contains(usage, " (default: ")
		usage, def := splitDefault(usage, f)
		switch {
		case described:
		case def == "" && isBoolFlag(f):
			def = "off"
		case def == "":
			def = "none"
		default:
			def = "`" + def + "`"
		}
		rows = append(rows, fmt.Sprintf("| `--%s` | `%s` | %s | %s |", f.Name, envName(f.Name), def, strings.ReplaceAll(usage, "|", `\|`)))
	}
	return rows
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// TestREADMEConfig fails when README's Configuration table and the flags
// drift apart, naming each line to add or remove; -update rewrites it.
func TestREADMEConfig(t *testing.T) {
	const path = "../../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	begin, end := strings.Index(readme, configBegin), strings.Index(readme, configEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no %q … %q markers around its Configuration table", configBegin, configEnd)
	}
	want := configTable()
	if *update {
		readme = readme[:begin] + configBegin + "\n" + strings.Join(want, "\n") + "\n" + readme[end:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := strings.Split(strings.TrimSpace(readme[begin+len(configBegin):end]), "\n")
	have := map[string]bool{}
	for _, l := range got {
		have[l] = true
	}
	wanted := map[string]bool{}
	for _, l := range want {
		wanted[l] = true
		if !have[l] {
			t.Errorf("README.md's Configuration table lacks this line; add it (in flag-name order) or run go test ./cmd/server -run TestREADMEConfig -update:\n%s", l)
		}
	}
	for _, l := range got {
		if !wanted[l] {
			t.Errorf("README.md's Configuration table has this line, which no flag matches any more; remove it or run go test ./cmd/server -run TestREADMEConfig -update:\n%s", l)
		}
	}
	if !t.Failed() && strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README.md's Configuration table is out of order; run go test ./cmd/server -run TestREADMEConfig -update")
	}
}
