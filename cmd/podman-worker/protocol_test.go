package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// protocol.md is the contract client authors code against. A method or a
// param renamed in the code but not in the document breaks them without a
// single failing test elsewhere, so these tests hold the document to the
// code: the methods the worker serves, the params each one accepts, and the
// form of each method's section.
//
// The form, as protocol.md's section 5 states it: every `#### name` heading
// is a method section (nothing else in protocol.md uses level 4), running to
// the next heading of level 1 to 4. It holds one params table whose header
// is `| param | type | default | meaning |` and whose first cell is the param
// name in backticks, or instead the line "Params: none."; one result table
// whose header is `| field | type | meaning |`; no other table; and one
// fenced code block, the example: a request line for that method and the
// response line with the same id.

const (
	docPath        = "../../protocol.md" // tests run in the package directory
	paramsNoneLine = "Params: none."
)

var (
	paramsHeader = []string{"param", "type", "default", "meaning"}
	resultHeader = []string{"field", "type", "meaning"}
	paramCell    = regexp.MustCompile("^`([a-z_][a-z0-9_]*)`$")
	methodName   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

func TestProtocolDoc(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("reading the protocol document: %v", err)
	}
	if problems := checkProtocolDoc(string(doc), methodParams(), commonParams()); len(problems) > 0 {
		abs, _ := filepath.Abs(docPath)
		t.Errorf("%s disagrees with the methods the worker serves (%d problems). Fix protocol.md; "+
			"if the code is what is wrong, fix the method's params struct in handlers/ (or its "+
			"registration in handlers.Service.Methods) instead:\n  %s",
			abs, len(problems), strings.Join(problems, "\n  "))
	}
}

// TestProtocolDocReportsEveryMismatch checks the checker: each kind of
// disagreement is found, and all of them are reported together.
func TestProtocolDocReportsEveryMismatch(t *testing.T) {
	served := map[string][]string{"ping": nil, "rm": {"container", "force"}}
	ping := docSection("ping")
	rm := docSection("rm", "container", "force")
	common := map[string][]string{"rm": {"connection"}}
	rules := "### Rules for params (all methods)\n\n- `connection` chooses the Podman connection.\n\n"
	withConnection := strings.Replace(rm, `"params":{}`, `"params":{"container":"c","connection":"b"}`, 1)
	tests := []struct {
		name   string
		doc    string
		served map[string][]string
		common map[string][]string // params a method takes besides its own
		want   []string            // one substring per expected problem, in the sorted order of the report
	}{
		{"in agreement", ping + rm, served, nil, nil},
		{"documented, not served", ping + rm + docSection("gone", "x"), served, nil,
			[]string{`protocol.md documents "gone", but the worker serves no such method`}},
		{"served, not documented", ping, served, nil,
			[]string{"the worker serves \"rm\", but protocol.md has no `#### rm` section"}},
		{"param missing from the doc", ping + docSection("rm", "container"), served, nil,
			[]string{`rm: the worker accepts param "force", but protocol.md's params table does not list it`}},
		{"param documented, not accepted", ping + docSection("rm", "container", "force", "forse"), served, nil,
			[]string{`rm: protocol.md lists param "forse", which the worker does not accept`}},
		{"params none, but the method takes params", ping + docSection("rm"), served, nil,
			[]string{`rm: the worker accepts param "container"`, `rm: the worker accepts param "force"`}},
		{"two sections", ping + ping + rm, served, nil,
			[]string{"ping: protocol.md has 2 `#### ping` sections"}},
		{"neither a params table nor the none line",
			strings.Replace(ping, paramsNoneLine+"\n", "", 1) + rm, served, nil,
			[]string{`ping: no params table and no "Params: none." line`}},
		{"two params tables", strings.Replace(rm, "| `force` |", "\n| param | type | default | meaning |\n|---|---|---|---|\n| `force` |", 1) + ping, served, nil,
			[]string{"rm: 2 params tables"}},
		{"a params table and the none line", strings.Replace(rm, "Result:", paramsNoneLine+"\n\nResult:", 1) + ping, served, nil,
			[]string{`rm: both a params table and the "Params: none." line`}},
		{"a row without a backticked name", strings.Replace(rm, "| `force` |", "| force |", 1) + ping, served, nil,
			[]string{`rm: params row "| force |`, `rm: the worker accepts param "force"`}},
		{"no result table", strings.Replace(ping, "| field | type | meaning |", "| what | type | meaning |", 1) + rm, served, nil,
			[]string{"ping: 0 result tables", `ping: a table whose header is`}},
		{"two examples", ping + rm + "```json\n{}\n```\n", served, nil,
			[]string{"rm: 2 examples (fenced blocks)"}},
		{"example of another method", strings.Replace(rm, `"method":"rm"`, `"method":"kill"`, 1) + ping, served, nil,
			[]string{`rm: the example has no request line for "rm"`}},
		{"example without its response", strings.Replace(ping, `{"jsonrpc":"2.0","id":1,"result":{}}`, `{"jsonrpc":"2.0","id":2,"result":{}}`, 1) + rm, served, nil,
			[]string{`ping: the example has no response line with the request's id 1`}},
		{"example sends a param the method refuses", strings.Replace(rm, `"params":{}`, `"params":{"container":"c","now":true}`, 1) + ping, served, nil,
			[]string{`rm: the example sends param "now", which the worker does not accept`}},
		{"every problem at once", docSection("gone") + docSection("rm", "forse"), served, nil,
			[]string{
				`protocol.md documents "gone"`,
				`rm: protocol.md lists param "forse"`,
				`rm: the worker accepts param "container"`,
				`rm: the worker accepts param "force"`,
				"the worker serves \"ping\", but protocol.md has no `#### ping` section",
			}},
		{"a common param in the example, documented in the rules", rules + ping + withConnection, served, common, nil},
		{"a common param not documented in the rules", ping + withConnection, served, common,
			[]string{"protocol.md's \"Rules for params\" do not document `connection`"}},
		{"a common param in a method's table", rules + ping + docSection("rm", "container", "force", "connection"), served, common,
			[]string{`rm: protocol.md lists param "connection" in the method's table`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkProtocolDoc(tt.doc, tt.served, tt.common)
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.Contains(got[i], tt.want[i])
			}
			if !ok {
				t.Errorf("document:\n%s\nreported %d problems:\n  %s\nwant %d, containing in order:\n  %s",
					tt.doc, len(got), strings.Join(got, "\n  "), len(tt.want), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// docSection writes a well-formed method section, for the checker's tests.
func docSection(name string, params ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s\n\nWhat it does.\n\n", name)
	if len(params) == 0 {
		b.WriteString(paramsNoneLine + "\n\n")
	} else {
		b.WriteString("| param | type | default | meaning |\n|---|---|---|---|\n")
		for _, p := range params {
			fmt.Fprintf(&b, "| `%s` | string | none | A param. |\n", p)
		}
		b.WriteString("\n")
	}
	b.WriteString("Result:\n\n| field | type | meaning |\n|---|---|---|\n| (result) | object | The result. |\n\n")
	fmt.Fprintf(&b, "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":%q,\"params\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n```\n\n", name)
	return b.String()
}

// docMethod is what a method section of protocol.md says.
type docMethod struct {
	name     string
	params   []string // from the params table, in its order
	sent     []string // the params the example request sends
	problems []string // the section's own form, already prefixed with its name
}

// checkProtocolDoc compares protocol.md's method sections with served (the
// params of every method, as methodParams returns them) and common (the
// params each method takes besides its own, as commonParams returns them,
// which protocol.md documents once, in its rules for params) and returns
// every problem found, sorted, each saying what to change.
func checkProtocolDoc(doc string, served, common map[string][]string) []string {
	var problems []string
	sections := parseMethodSections(doc)
	documented := map[string]bool{}
	for _, names := range common {
		for _, n := range names {
			if !documented[n] {
				documented[n] = true
				if !strings.Contains(rulesForParams(doc), "`"+n+"`") {
					problems = append(problems, fmt.Sprintf("protocol.md's \"Rules for params\" do not document `%s`, which methods take besides their own params: add it there, once", n))
				}
			}
		}
	}
	count := map[string]int{}
	for _, s := range sections {
		count[s.name]++
	}
	for _, s := range sections {
		problems = append(problems, s.problems...)
		if count[s.name] > 1 {
			problems = append(problems, fmt.Sprintf("%s: protocol.md has %d `#### %s` sections: keep one", s.name, count[s.name], s.name))
			count[s.name] = 1 // say it once
		}
		accepted, ok := served[s.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("protocol.md documents %q, but the worker serves no such method: remove its `#### %s` section from protocol.md, or register the method", s.name, s.name))
			continue
		}
		for _, p := range accepted {
			if !slices.Contains(s.params, p) {
				problems = append(problems, fmt.Sprintf("%s: the worker accepts param %q, but protocol.md's params table does not list it: add a row for it to protocol.md", s.name, p))
			}
		}
		for _, p := range s.params {
			if slices.Contains(common[s.name], p) {
				problems = append(problems, fmt.Sprintf("%s: protocol.md lists param %q in the method's table, but it is common to all methods and documented once in the rules for params: remove the row", s.name, p))
				continue
			}
			if !slices.Contains(accepted, p) {
				problems = append(problems, fmt.Sprintf("%s: protocol.md lists param %q, which the worker does not accept (it refuses it as an unknown field): fix or remove the row in protocol.md", s.name, p))
			}
		}
	}
	for name := range served {
		if count[name] == 0 {
			problems = append(problems, fmt.Sprintf("the worker serves %q, but protocol.md has no `#### %s` section: add one to protocol.md", name, name))
		}
	}
	// Check each example's params against the method, once the table
	// comparison has said what the method accepts.
	for _, s := range sections {
		if accepted, ok := served[s.name]; ok {
			problems = append(problems, s.exampleParams(append(slices.Clone(accepted), common[s.name]...))...)
		}
	}
	sort.Strings(problems)
	return problems
}

// rulesForParams is the text of protocol.md's "Rules for params" section.
func rulesForParams(doc string) string {
	var out []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if level, title := heading(line); level > 0 {
			in = strings.HasPrefix(title, "Rules for params")
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// parseMethodSections splits protocol.md into its method sections and checks
// the form of each.
func parseMethodSections(doc string) []*docMethod {
	var (
		out     []*docMethod
		cur     *rawSection
		inFence bool
	)
	finish := func() {
		if cur != nil {
			out = append(out, cur.check())
			cur = nil
		}
	}
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if cur != nil {
				if !inFence {
					cur.fences = append(cur.fences, nil)
				}
			}
			inFence = !inFence
			continue
		}
		if inFence {
			if cur != nil {
				last := len(cur.fences) - 1
				cur.fences[last] = append(cur.fences[last], line)
			}
			continue
		}
		if level, title := heading(line); level > 0 && level <= 4 {
			finish()
			if level == 4 {
				cur = &rawSection{name: title}
			}
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, line)
		}
	}
	finish()
	return out
}

// heading returns the level and text of a Markdown ATX heading, or 0.
func heading(line string) (int, string) {
	level := 0
	for level < len(line) && line[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || level >= len(line) || line[level] != ' ' {
		return 0, ""
	}
	return level, strings.TrimSpace(line[level:])
}

// rawSection is the raw text of one method section: its lines outside code
// blocks, and the lines of each code block.
type rawSection struct {
	name   string
	lines  []string
	fences [][]string
}

// check reads the section's params table and reports what departs from the form.
func (s *rawSection) check() *docMethod {
	m := &docMethod{name: s.name}
	bad := func(format string, args ...any) {
		m.problems = append(m.problems, s.name+": "+fmt.Sprintf(format, args...)+" (fix protocol.md)")
	}
	if !methodName.MatchString(s.name) {
		bad("the heading `#### %s` is not a method name; level-4 headings in protocol.md are method sections only", s.name)
	}
	var paramTables, resultTables, noneLines int
	for _, table := range tables(s.lines) {
		header := cells(table[0])
		for i := range header {
			header[i] = strings.ToLower(header[i])
		}
		switch {
		case slices.Equal(header, paramsHeader):
			paramTables++
			for _, row := range table[min(2, len(table)):] {
				name := paramCell.FindStringSubmatch(cells(row)[0])
				if name == nil {
					bad("params row %q: its first cell must be the param name in backticks, such as `image`", row)
					continue
				}
				m.params = append(m.params, name[1])
			}
		case slices.Equal(header, resultHeader):
			resultTables++
		default:
			bad("a table whose header is %q; a method section has only a params table (%s) and a result table (%s)",
				table[0], "| "+strings.Join(paramsHeader, " | ")+" |", "| "+strings.Join(resultHeader, " | ")+" |")
		}
	}
	for _, line := range s.lines {
		if strings.TrimSpace(line) == paramsNoneLine {
			noneLines++
		}
	}
	switch {
	case paramTables == 0 && noneLines == 0:
		bad("no params table and no %q line", paramsNoneLine)
	case paramTables > 0 && noneLines > 0:
		bad("both a params table and the %q line", paramsNoneLine)
	case paramTables > 1:
		bad("%d params tables; one lists every param", paramTables)
	case noneLines > 1:
		bad("%d %q lines", noneLines, paramsNoneLine)
	}
	if resultTables != 1 {
		bad("%d result tables; want exactly one (field | type | meaning)", resultTables)
	}
	if len(s.fences) != 1 {
		bad("%d examples (fenced blocks); want exactly one, the request line and the response line", len(s.fences))
	} else if problem := s.checkExample(m); problem != "" {
		bad("%s", problem)
	}
	return m
}

// checkExample finds, in the section's one code block, a request line for
// the section's method with an id, and a response line with the same id. It
// notes in m the params the request sends.
func (s *rawSection) checkExample(m *docMethod) string {
	var id json.RawMessage
	for _, line := range s.fences[0] {
		var req struct {
			Method string                     `json:"method"`
			ID     json.RawMessage            `json:"id"`
			Params map[string]json.RawMessage `json:"params"`
		}
		if json.Unmarshal([]byte(line), &req) == nil && req.Method == s.name && req.ID != nil {
			id = req.ID
			for name := range req.Params {
				m.sent = append(m.sent, name)
			}
			break
		}
	}
	if id == nil {
		return fmt.Sprintf("the example has no request line for %q with an id", s.name)
	}
	for _, line := range s.fences[0] {
		var resp struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal([]byte(line), &resp) == nil && bytes.Equal(resp.ID, id) && (resp.Result != nil || resp.Error != nil) {
			return ""
		}
	}
	return fmt.Sprintf("the example has no response line with the request's id %s", id)
}

// exampleParams reports the params the example request sends that the
// method does not accept: an example is copied more often than a table is read.
func (m *docMethod) exampleParams(accepted []string) []string {
	var out []string
	for _, p := range m.sent {
		if !slices.Contains(accepted, p) {
			out = append(out, fmt.Sprintf("%s: the example sends param %q, which the worker does not accept: fix the example in protocol.md", m.name, p))
		}
	}
	return out
}

// tables returns the Markdown tables among lines, each as its lines.
func tables(lines []string) [][]string {
	var out [][]string
	var cur []string
	for _, line := range append(lines, "") {
		if strings.HasPrefix(strings.TrimSpace(line), "|") {
			cur = append(cur, strings.TrimSpace(line))
			continue
		}
		if cur != nil {
			out = append(out, cur)
			cur = nil
		}
	}
	return out
}

// cells splits a table row into its trimmed cells; `\|` is not a separator.
func cells(row string) []string {
	row = strings.TrimSuffix(strings.TrimPrefix(row, "|"), "|")
	var out []string
	var cell strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cell.WriteByte('|')
			i++
		case row[i] == '|':
			out = append(out, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(row[i])
		}
	}
	return append(out, strings.TrimSpace(cell.String()))
}

// TestProtocolDocLinks checks that every relative link between the
// documents (protocol.md, operations.md, README.md) names a file and a
// heading that exist, so the split documents keep pointing at each other.
func TestProtocolDocLinks(t *testing.T) {
	docs := []string{"protocol.md", "operations.md", "README.md"}
	text := map[string]string{}
	anchors := map[string]map[string]bool{}
	for _, name := range docs {
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		text[name] = string(b)
		anchors[name] = headingAnchors(string(b))
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	var problems []string
	for _, name := range docs {
		for _, m := range link.FindAllStringSubmatch(withoutCodeBlocks(text[name]), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			if file == "" {
				file = name
			}
			if _, known := anchors[file]; !known {
				if _, err := os.Stat(filepath.Join("..", "..", file)); err != nil {
					problems = append(problems, fmt.Sprintf("%s links to %s, which does not exist", name, target))
				}
				continue
			}
			if anchor != "" && !anchors[file][anchor] {
				problems = append(problems, fmt.Sprintf("%s links to %s, but %s has no heading with the anchor #%s", name, target, file, anchor))
			}
		}
	}
	if len(problems) > 0 {
		t.Errorf("broken links between the documents; fix the link or the heading it names:\n  %s", strings.Join(problems, "\n  "))
	}
}

// headingAnchors returns the anchors GitHub gives a document's headings:
// lower case, punctuation dropped, spaces as hyphens, "-1", "-2" on repeats.
func headingAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(withoutCodeBlocks(doc), "\n") {
		level, title := heading(line)
		if level == 0 {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// withoutCodeBlocks drops fenced code blocks, whose lines are neither
// headings nor links.
func withoutCodeBlocks(doc string) string {
	var out []string
	inFence := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
