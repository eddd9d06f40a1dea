package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/podman-worker/podman-worker/podman/podmantest"
	"github.com/podman-worker/podman-worker/rpc"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden files that run: testdata/golden (TestGolden), testdata/golden-cli (TestCLIGolden) and testdata/golden-http (TestHTTPGolden); make golden rewrites all three")

// TestGolden replays every testdata/golden/*.txtar session through the
// built worker and compares its stdout, normalized, with the file.
//
// A file's comment (before the first section) holds settings, one per line:
//
//	args: --max-workers 1          extra worker flags ($TESTDATA is replaced)
//	socket: none                   start the worker with a socket nobody serves
//	drop: build.progress           leave these notifications out of the comparison
//	keys: 3 4                      compare only the result keys of these ids
//	registry: plain                start a private plain-HTTP registry ($REGISTRY)
//
// Section "in.jsonl" is sent line by line. After each line the driver waits
// until the worker has answered it (a ping with a private id, answered
// only after everything sent before it, since the worker runs one call at
// a time in arrival order unless args say otherwise), so the output order is
// deterministic. Lines starting with '#' are directives or comments:
//
//	# async       do not wait after the next line
//	# sleep 500ms wait before sending the next line
//
// $BUSYBOX, $TESTDATA, $SOCKET and $REGISTRY in the input are replaced before sending.
// Section "out.jsonl" is the expected output; go test -run TestGolden -update
// rewrites it.
func TestGolden(t *testing.T) {
	runGoldenSuite(t, goldenSuite{test: "TestGolden", dir: "golden", in: "in.jsonl", out: "out.jsonl", play: playSession})
}

// goldenSuite is one of the three golden suites (TestGolden, TestCLIGolden,
// TestHTTPGolden): its folder under testdata, the section a file's input is
// in and the one its expected output is in, and how to play one file's
// input into the output to compare.
type goldenSuite struct {
	test, dir, in, out string
	play               func(t *testing.T, settings map[string]string, in []byte) string
}

// runGoldenSuite plays every file of a suite, each as a subtest, and
// compares what it printed with the file's output section, or rewrites
// that section with -update.
func runGoldenSuite(t *testing.T, s goldenSuite) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "testdata", s.dir, "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files under testdata/%s (%v)", s.dir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ar := txtar.Parse(data)
			in, ok := section(ar, s.in)
			if !ok {
				t.Fatalf("%s has no %s section", file, s.in)
			}
			got := s.play(t, parseSettings(ar.Comment), in)
			if *update {
				setSection(ar, s.out, []byte(got))
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want, _ := section(ar, s.out); got != string(want) {
				t.Errorf("%s: %s differs (go test ./cmd/podman-worker -run '%s/%s' -update rewrites it after review)\n%s",
					filepath.Base(file), s.out, s.test, name, diffLines(string(want), got))
			}
		})
	}
}

// playSession sends a protocol session's lines to a worker, one at a time
// (see TestGolden), and answers its normalized output.
func playSession(t *testing.T, settings map[string]string, in []byte) string {
	// Each session gets a fresh private service, so that what it lists
	// (images, containers) does not depend on what other tests left.
	svc := service
	if settings["socket"] != "none" {
		svc = privateService(t)
	}
	socket := svc.URI
	if settings["socket"] == "none" {
		socket = "unix:///nonexistent/podman.sock"
	}
	registry := ""
	if settings["registry"] == "plain" {
		// A private plain-HTTP registry for the session: $REGISTRY.
		registry = startRegistry(t, podmantest.RegistryOptions{}).Addr
	}
	vars := goldenVars("$SOCKET", socket, "$REGISTRY", registry)
	args := append([]string{"--socket", socket, "--max-workers", "1"}, strings.Fields(vars.Replace(settings["args"]))...)
	got := replay(t, args, string(in), vars)
	norm := newNormalizer(settings, socket)
	norm.registry = registry
	var out []string
	for _, line := range got {
		if l, keep := norm.line(t, line); keep {
			out = append(out, l)
		}
	}
	if settings["reuse"] == "compare" {
		compareReused(t, args, string(in), vars, norm, out)
	}
	return strings.Join(out, "\n") + "\n"
}

// replay runs one worker with args through the transcript in (each line
// sent when the one before was answered, "# async" and "# sleep D"
// directives aside) and answers every line it wrote.
func replay(t *testing.T, args []string, in string, vars *strings.Replacer) []string {
	t.Helper()
	w := startWorkerRaw(t, args...)
	var got []string
	collect := func(until string) {
		for {
			line, ok := w.next(3 * time.Minute)
			if !ok {
				if until != "" {
					t.Fatalf("the worker closed its output while waiting for %s", until)
				}
				return
			}
			if until != "" && strings.Contains(line, `"id":"`+until+`"`) {
				return
			}
			got = append(got, line)
		}
	}
	async, n := false, 0
	for _, line := range strings.Split(in, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case trimmed == "# async":
			async = true
			continue
		case strings.HasPrefix(trimmed, "# sleep "):
			d, err := time.ParseDuration(strings.TrimPrefix(trimmed, "# sleep "))
			if err != nil {
				t.Fatalf("bad directive %q", trimmed)
			}
			time.Sleep(d)
			continue
		case strings.HasPrefix(trimmed, "#"):
			continue
		}
		w.send(vars.Replace(line))
		if async {
			async = false
			continue
		}
		n++
		syncID := fmt.Sprintf("golden-sync-%d", n)
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"method":"ping"}`, syncID))
		collect(syncID)
	}
	if code := w.closeAndWait(time.Minute); code != 0 {
		t.Errorf("the worker exited with %d at the end of its input, want 0", code)
	}
	collect("")
	return got
}

// reusedPass is added to the ids of the transcript's second pass.
const reusedPass = 1000

// compareReused replays the transcript with reuse on every run, twice in
// one worker (the first pass starts the instances, the second is served
// by them), and checks that the second pass answers as the cold session
// did (cold): the same lines but for "start".
func compareReused(t *testing.T, args []string, in string, vars *strings.Replacer, norm *normalizer, cold []string) {
	t.Helper()
	var first, second []string
	for _, line := range strings.Split(in, "\n") {
		first = append(first, withReuse(t, line, 0))
		second = append(second, withReuse(t, line, reusedPass))
	}
	got := replay(t, args, strings.Join(first, "\n")+"\n"+strings.Join(second, "\n"), vars)
	var reused []string
	for _, line := range got {
		l, keep := norm.line(t, line)
		if !keep {
			continue
		}
		if c, pass := comparable(t, l); pass {
			reused = append(reused, c)
		}
	}
	var want []string
	for _, l := range cold {
		if c, _ := comparable(t, l); !strings.Contains(c, `"method":"worker.ready"`) {
			want = append(want, c)
		}
	}
	reused, want = coalesceOutput(t, reused), coalesceOutput(t, want)
	if strings.Join(reused, "\n") != strings.Join(want, "\n") {
		t.Errorf("served by warm instances, the transcript answers otherwise than cold\n%s", diffLines(strings.Join(want, "\n"), strings.Join(reused, "\n")))
	}
}

// coalesceOutput joins consecutive run.output notifications of one
// request and stream into one: how output is cut into chunks depends on
// timing (Podman 5 delivered "one\ntwo\n" in one piece cold and in two
// reused), what it says does not.
func coalesceOutput(t *testing.T, lines []string) []string {
	type note struct {
		Method string `json:"method"`
		Params struct {
			Data      string          `json:"data"`
			RequestID json.RawMessage `json:"request_id"`
			Stream    string          `json:"stream"`
		} `json:"params"`
	}
	var out []string
	var last *note
	for _, l := range lines {
		var n note
		if json.Unmarshal([]byte(l), &n) != nil || n.Method != "run.output" {
			out, last = append(out, l), nil
			continue
		}
		if last != nil && string(last.Params.RequestID) == string(n.Params.RequestID) && last.Params.Stream == n.Params.Stream {
			last.Params.Data += n.Params.Data
		} else {
			last = &n
			out = append(out, "")
		}
		b, err := rpc.Marshal(last)
		if err != nil {
			t.Fatal(err)
		}
		out[len(out)-1] = string(b)
	}
	return out
}

// withReuse adds "reuse": true to a run request and offset to its id.
func withReuse(t *testing.T, line string, offset int) string {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if strings.HasPrefix(strings.TrimSpace(line), "#") || dec.Decode(&m) != nil {
		return line
	}
	if n, ok := m["id"].(json.Number); ok {
		i, _ := n.Int64()
		m["id"] = i + int64(offset)
	}
	if p, ok := m["params"].(map[string]any); ok && m["method"] == "run" {
		p["reuse"] = true
	}
	b, err := rpc.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// comparable is a normalized line without what differs between a cold and
// a reused run, and whether it belongs to the second pass (its id, or
// its notification's request_id, past reusedPass), with that id brought
// back.
func comparable(t *testing.T, line string) (string, bool) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return line, false
	}
	pass := false
	back := func(v any) any {
		if n, ok := v.(json.Number); ok {
			if i, _ := n.Int64(); i >= reusedPass {
				pass = true
				return i - reusedPass
			}
		}
		return v
	}
	m["id"] = back(m["id"])
	if m["id"] == nil {
		delete(m, "id")
	}
	if p, ok := m["params"].(map[string]any); ok {
		if _, has := p["request_id"]; has {
			p["request_id"] = back(p["request_id"])
		}
	}
	if r, ok := m["result"].(map[string]any); ok {
		delete(r, "start")
	}
	if e, ok := m["error"].(map[string]any); ok {
		if d, ok := e["data"].(map[string]any); ok {
			delete(d, "start")
		}
	}
	b, err := rpc.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), pass
}

// normalizer replaces what differs between runs and machines with
// placeholders, and re-encodes every line with sorted keys.
type normalizer struct {
	drop   map[string]bool
	keys   map[string]bool
	socket string
	// exact keeps a function's JSON stdout as the worker wrote it (key
	// order, number text, escapes) instead of re-encoding it sorted: the
	// "exact: stdout" setting, for files that pin that fidelity.
	exact bool
	// registry is the session's registry address, written <REGISTRY>.
	registry string
}

func newNormalizer(settings map[string]string, socket string) *normalizer {
	n := &normalizer{drop: map[string]bool{}, keys: map[string]bool{}, socket: socket, exact: settings["exact"] == "stdout"}
	for _, m := range strings.Fields(settings["drop"]) {
		n.drop[m] = true
	}
	for _, id := range strings.Fields(settings["keys"]) {
		n.keys[id] = true
	}
	return n
}

var (
	reDigest  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reShortID = regexp.MustCompile(`\b[0-9a-f]{11,12}\b`) // podman prints "--> 73292938c48"
	reTime    = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	reVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	reTmp     = regexp.MustCompile(`/tmp/(pw-|podman-worker-|Test)[A-Za-z0-9._-]*`) // host temp folders
)

// builderNoise is build output one Podman version prints and another does
// not (4.3 warns about the TARGET* args a --platform build defines). It is
// Podman's own output, passed through as it is; the goldens leave it out so
// they hold on Podman 4 and 5 alike.
var builderNoise = regexp.MustCompile(`^\[Warning\] one or more build args were not consumed`)

// volatileKeys vary from run to run whatever the worker does.
var volatileKeys = map[string]string{"pid": "<PID>", "latency_ms": "<MS>", "uptime_s": "<S>", "p50_ms": "<MS>", "p99_ms": "<MS>"}

// sizeKeys hold byte counts; those of images differ with the busybox
// build, while small ones (a file the session wrote) are kept.
var sizeKeys = map[string]bool{"size": true, "Size": true, "VirtualSize": true, "space_reclaimed": true}

func (n *normalizer) line(t *testing.T, line string) (string, bool) {
	t.Helper()
	var v any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("stdout carried a line that is not JSON: %q", line)
	}
	if m, ok := v.(map[string]any); ok {
		if method, _ := m["method"].(string); n.drop[method] {
			return "", false
		}
		if p, _ := m["params"].(map[string]any); m["method"] == "build.progress" && p != nil && builderNoise.MatchString(fmt.Sprint(p["line"])) {
			return "", false
		}
	}
	if n.exact {
		v = keepStdout(v, json.RawMessage(line))
	}
	v = n.value("", n.keysOnly(v))
	if arr, ok := v.([]any); ok {
		// A batch's replies come in any order.
		sort.Slice(arr, func(i, j int) bool { return idOf(arr[i]) < idOf(arr[j]) })
	}
	// Placeholders such as <DIGEST> stay readable: no HTML escaping.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n"), true
}

// keysOnly replaces the result of the ids named by the keys setting with
// its sorted keys: for objects whose values are machine-specific (info).
func (n *normalizer) keysOnly(v any) any {
	m, ok := v.(map[string]any)
	if !ok || !n.keys[idOf(m)] {
		return v
	}
	if res, ok := m["result"].(map[string]any); ok {
		keys := make([]string, 0, len(res))
		for k := range res {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m["result"] = keys
	}
	return m
}

// keepStdout puts back, in the decoded line v, the raw text of every
// "stdout" that holds a JSON object or array; raw is the same line undecoded.
func keepStdout(v any, raw json.RawMessage) any {
	switch x := v.(type) {
	case map[string]any:
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return v
		}
		for k, e := range x {
			if r := bytes.TrimSpace(fields[k]); k == "stdout" && len(r) > 0 && (r[0] == '{' || r[0] == '[') {
				x[k] = json.RawMessage(r)
			} else {
				x[k] = keepStdout(e, fields[k])
			}
		}
	case []any:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil || len(items) != len(x) {
			return v
		}
		for i := range x {
			x[i] = keepStdout(x[i], items[i])
		}
	}
	return v
}

func (n *normalizer) value(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = n.value(k, e)
		}
		return x
	case []any:
		kept := x[:0]
		for _, e := range x {
			if s, ok := e.(string); ok && builderNoise.MatchString(s) {
				continue
			}
			kept = append(kept, n.value(key, e))
		}
		return kept
	case json.Number:
		if placeholder, ok := volatileKeys[key]; ok {
			return placeholder
		}
		if n, err := x.Int64(); sizeKeys[key] && (err != nil || n >= 4096) {
			return "<SIZE>"
		}
		return x
	case string:
		s := strings.ReplaceAll(x, n.socket, "<SOCKET>")
		if n.registry != "" {
			s = strings.ReplaceAll(s, n.registry, "<REGISTRY>")
		}
		s = strings.ReplaceAll(s, filepath.Join(repoRoot, "testdata"), "<TESTDATA>")
		s = reDigest.ReplaceAllString(s, "<DIGEST>")
		s = reShortID.ReplaceAllString(s, "<SHORTID>")
		s = reTime.ReplaceAllString(s, "<TIME>")
		s = reTmp.ReplaceAllString(s, "<TMP>")
		if reVersion.MatchString(s) {
			s = "<VERSION>"
		}
		return s
	}
	return v
}

func idOf(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	b, _ := json.Marshal(m["id"])
	return strings.Trim(string(b), `"`)
}

func parseSettings(comment []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(comment), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && !strings.HasPrefix(strings.TrimSpace(line), "#") && !strings.Contains(k, " ") {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// goldenVars replaces the placeholders every golden file may use
// ($BUSYBOX, $TESTDATA), and the extra old, new pairs given.
func goldenVars(extra ...string) *strings.Replacer {
	return strings.NewReplacer(append([]string{"$BUSYBOX", podmantest.BusyboxImage, "$TESTDATA", filepath.Join(repoRoot, "testdata")}, extra...)...)
}

// section returns the content of the archive's file name, if any.
func section(ar *txtar.Archive, name string) ([]byte, bool) {
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// setSection replaces the content of file name, or appends the file.
func setSection(ar *txtar.Archive, name string, data []byte) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}

// diffLines shows what changed from want to got, line by line, aligned so
// that an inserted line does not flag every line after it.
func diffLines(want, got string) string {
	return cmp.Diff(strings.Split(want, "\n"), strings.Split(got, "\n"))
}
