package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const operationsDocPath = "../../operations.md" // tests run in the package directory

// TestOperationsDoc holds operations.md's "Flags and environment" table
// against flagTable, as TestProtocolDoc holds protocol.md against the
// methods: every flag the worker takes has a row, every row is a flag, and
// a row's environment column names the flag's variable (or "—" for a flag
// without one).
func TestOperationsDoc(t *testing.T) {
	doc, err := os.ReadFile(operationsDocPath)
	if err != nil {
		t.Fatalf("reading the operations document: %v", err)
	}
	if problems := checkFlagsDoc(string(doc), flagTable(&flagValues{}, func(string) string { return "" })); len(problems) > 0 {
		abs, _ := filepath.Abs(operationsDocPath)
		t.Errorf("%s disagrees with the worker's flags (%d problems). Fix its \"Flags and environment\" table; "+
			"if the code is what is wrong, fix flagTable in config.go:\n  %s", abs, len(problems), strings.Join(problems, "\n  "))
	}
}

// TestOperationsDocReportsEveryMismatch checks the checker.
func TestOperationsDocReportsEveryMismatch(t *testing.T) {
	specs := []flagSpec{{name: "socket", env: "PODMAN_SOCKET_PATH"}, {name: "debug", env: "DEBUG"}, {name: "version"}}
	head := "### Flags and environment\n\n| flag | environment | default | meaning |\n|---|---|---|---|\n"
	socket := "| `--socket` | `PODMAN_SOCKET_PATH`, then `CONTAINER_HOST` | none | The socket. |\n"
	debug := "| `--debug` | `DEBUG=true` | off | Debug. |\n"
	version := "| `--version` | — | — | Print the version. |\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"in agreement", head + socket + debug + version + "\n### Next\n| `--x` | y |\n", nil},
		{"a flag without a row", head + socket + version, []string{`the worker takes --debug, but the table has no row for it`}},
		{"a row without a flag", head + socket + debug + version + "| `--gone` | `GONE` | none | Gone. |\n", []string{`the table has a row for --gone, which the worker does not take`}},
		{"the wrong variable", head + strings.Replace(socket, "PODMAN_SOCKET_PATH", "PODMAN_SOCKET", 1) + debug + version,
			[]string{"--socket: the environment column `PODMAN_SOCKET`, then `CONTAINER_HOST` does not name PODMAN_SOCKET_PATH"}},
		{"a variable where there is none", head + socket + debug + "| `--version` | `VERSION` | — | Print. |\n",
			[]string{"--version: the environment column `VERSION` should be —"}},
		{"two rows", head + socket + socket + debug + version, []string{"--socket: 2 rows"}},
		{"no table", "# nothing\n", []string{`no "### Flags and environment" table`}},
	}
	for _, tt := range tests {
		got := checkFlagsDoc(tt.doc, specs)
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %d problems %q, want %d", tt.name, len(got), got, len(tt.want))
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], tt.want[i]) {
				t.Errorf("%s: problem %q, want one holding %q", tt.name, got[i], tt.want[i])
			}
		}
	}
}

var flagRow = regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\| ([^|]*) \\|")

// checkFlagsDoc lists what the doc's flags table gets wrong, sorted.
func checkFlagsDoc(doc string, specs []flagSpec) []string {
	var problems []string
	_, table, found := strings.Cut(doc, "### Flags and environment\n")
	if !found {
		return []string{`no "### Flags and environment" table`}
	}
	if end := strings.Index(table, "\n#"); end >= 0 {
		table = table[:end]
	}
	rows := map[string][]string{} // flag -> environment columns
	for _, line := range strings.Split(table, "\n") {
		if m := flagRow.FindStringSubmatch(line); m != nil {
			rows[m[1]] = append(rows[m[1]], strings.TrimSpace(m[2]))
		}
	}
	taken := map[string]bool{}
	for _, f := range specs {
		taken[f.name] = true
		envs, ok := rows[f.name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("the worker takes --%s, but the table has no row for it", f.name))
		case len(envs) > 1:
			problems = append(problems, fmt.Sprintf("--%s: %d rows", f.name, len(envs)))
		case f.env == "" && envs[0] != "—":
			problems = append(problems, fmt.Sprintf("--%s: the environment column %s should be —", f.name, envs[0]))
		case f.env != "" && !strings.Contains(envs[0], "`"+f.env+"`") && !strings.Contains(envs[0], "`"+f.env+"="):
			problems = append(problems, fmt.Sprintf("--%s: the environment column %s does not name %s", f.name, envs[0], f.env))
		}
	}
	for name := range rows {
		if !taken[name] {
			problems = append(problems, fmt.Sprintf("the table has a row for --%s, which the worker does not take", name))
		}
	}
	sort.Strings(problems)
	return problems
}
