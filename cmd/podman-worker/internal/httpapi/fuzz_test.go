package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Any request gets one answer in the seed's envelope: never a panic (a
// recovered one would be a 500), never a body that is not JSON.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct{ method, path, contentType, body string }{
		{"POST", "/api/v1/containers", "application/json", `{"image":"i","name":"n","ports":{"80/tcp":["127.0.0.1",8080]},"volumes":{"/a":{"bind":"/b","mode":"ro"}}}`},
		{"POST", "/api/v1/containers", "application/json", `{"ports":{"80/tcp":[1,2,"x"]},"volumes":{"":{}}}`},
		{"DELETE", "/api/v1/containers/a%2Fb?force=yes", "", ""},
		{"GET", "/api/v1/containers/x/logs?tail=9999999999999999999", "", ""},
		{"POST", "/api/v1/containers/x/exec", "application/vnd.api+json", `{"command":["id"],"name":"x"}`},
		{"OPTIONS", "/api/v1/health", "", ""},
		{"PATCH", "/api/v1/containers/x/start", "text/plain", "{"},
	} {
		f.Add(seed.method, seed.path, seed.contentType, seed.body)
	}
	f.Fuzz(func(t *testing.T, method, path, contentType, body string) {
		req, err := http.NewRequest(method, "http://127.0.0.1:8080"+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(path, "/") {
			return
		}
		req.Header.Set("Content-Type", contentType)
		c := &standIn{}
		w := httptest.NewRecorder()
		New(c.call, Options{MaxBodyBytes: 4096, Log: zerolog.Nop()}).Handler().ServeHTTP(w, req)
		if w.Code == http.StatusInternalServerError {
			t.Fatalf("%s %q (%s) %q answered 500: %s", method, path, contentType, body, w.Body)
		}
		if w.Code == http.StatusNoContent || method == http.MethodHead {
			return
		}
		var m struct {
			Success   *bool  `json:"success"`
			Timestamp string `json:"timestamp"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m.Success == nil || m.Timestamp == "" {
			t.Fatalf("%s %q (%s) %q answered %d %q: not the envelope", method, path, contentType, body, w.Code, w.Body)
		}
		for _, call := range c.calls {
			if call.params != "" && !json.Valid([]byte(call.params)) {
				t.Fatalf("%s %q %q called %s with params that are not JSON: %q", method, path, body, call.method, call.params)
			}
		}
	})
}
