package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// playHTTP replays one testdata/golden-http file: the HTTP API's
// exchanges as a transcript, the way testdata/golden pins the protocol.
//
// The comment before the first section holds settings, one per line:
//
//	args: --http-max-body 1k      extra worker flags
//	token: SECRET                 start with this bearer token (a file) and send it
//	socket: none                  point the worker at a socket nothing serves
//
// Section "requests" holds the requests, separated by blank lines. Each
// is a line "METHOD PATH", then header lines "Name: value", then the body
// (the rest of the block). A body gets Content-Type: application/json
// unless a Content-Type line says otherwise; with a token setting, every
// request carries it unless an Authorization line says otherwise
// ("Authorization: -" sends none). Lines starting with '#' are comments.
// $BUSYBOX and $TESTDATA are replaced before sending ($TESTDATA in args too).
//
// Section "transcript" is each request ("> " lines) and its answer: "< "
// and the status line, the headers that matter to a client (Allow,
// WWW-Authenticate, the CORS headers), and the JSON body normalized as
// in testdata/golden (<TIME>, <DIGEST>, <SOCKET>, …) with sorted keys; the
// metrics object is reduced to its sorted keys, whose values vary.
// go test -run TestHTTPGolden -update rewrites it (runGoldenSuite).
func playHTTP(t *testing.T, settings map[string]string, in []byte) string {
	socket := "unix:///nonexistent/podman.sock"
	if settings["socket"] != "none" {
		socket = privateService(t).URI
	}
	vars := goldenVars()
	args := append([]string{"--socket", socket}, strings.Fields(vars.Replace(settings["args"]))...)
	token := settings["token"]
	if token != "" {
		tf := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tf, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--http-token-file", tf)
	}
	hw := startHTTPWorker(t, args...)
	norm := newNormalizer(settings, socket)

	var out strings.Builder
	for _, block := range strings.Split(string(in), "\n\n") {
		var lines []string
		for _, l := range strings.Split(block, "\n") {
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		method, path, ok := strings.Cut(lines[0], " ")
		if !ok {
			t.Fatalf("%q is not METHOD PATH", lines[0])
		}
		header := http.Header{}
		rest := lines[1:]
		for len(rest) > 0 && headerLine.MatchString(rest[0]) {
			name, value, _ := strings.Cut(rest[0], ": ")
			header.Set(name, value)
			rest = rest[1:]
		}
		body := strings.Join(rest, "\n")
		for _, l := range lines {
			fmt.Fprintf(&out, "> %s\n", l)
		}
		status, respHeader, respBody := hw.exchange(t, method, vars.Replace(path), vars.Replace(body), header, token)
		fmt.Fprintf(&out, "< %d %s\n", status, http.StatusText(status))
		for _, name := range shownHeaders {
			if v := respHeader.Get(name); v != "" {
				fmt.Fprintf(&out, "< %s: %s\n", name, v)
			}
		}
		if len(respBody) > 0 {
			out.WriteString(normalizeHTTPBody(t, norm, respBody) + "\n")
		}
		out.WriteString("\n")
	}
	if code := hw.stop(t, time.Minute); code != 0 {
		t.Errorf("the worker exited with %d after SIGTERM, want 0", code)
	}

	return out.String()
}

var headerLine = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*: `)

// shownHeaders are the response headers a transcript records.
var shownHeaders = []string{"Allow", "WWW-Authenticate", "Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Vary"}

// exchange sends one request of a transcript and returns the answer.
func (hw *httpWorker) exchange(t *testing.T, method, path, body string, header http.Header, token string) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, hw.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for name, values := range header {
		req.Header.Del(name)
		switch {
		case name == "Host":
			req.Host = values[0]
		case values[0] != "-":
			req.Header[name] = values
		}
	}
	resp, err := hw.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, bytes.TrimSpace(data)
}

// normalizeHTTPBody re-encodes a JSON body with sorted keys and the
// protocol golden's placeholders.
func normalizeHTTPBody(t *testing.T, norm *normalizer, data []byte) string {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("an answer is not JSON: %q", data)
	}
	if m, ok := v.(map[string]any); ok {
		if metrics, ok := m["metrics"].(map[string]any); ok {
			keys := make([]string, 0, len(metrics))
			for k := range metrics {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			m["metrics"] = keys
		}
	}
	v = norm.value("", v)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
