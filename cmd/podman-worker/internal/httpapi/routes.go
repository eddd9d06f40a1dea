package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/podman-worker/podman-worker/rpc"
)

// Prefix is where the seed's routes live.
const Prefix = "/api/v1/"

// route is one of the seed's routes: which method serves it, how the
// request becomes params, and under which key the result is answered.
type route struct {
	call   string // the worker method
	key    string // the envelope's key for the result
	status int    // on success
	// body says whether the route reads a JSON object: required (the
	// seed's @validate_json), optional (start, stop), or none.
	body bodyRule
	// params builds the method's params from the container named in the
	// path, the query and the body.
	params func(name string, q url.Values, b body) (body, *apiError)
}

type bodyRule int

const (
	noBody bodyRule = iota
	optionalBody
	requiredBody
)

// routes maps a path's shape to its routes by HTTP method. The shapes are
// the seed's: /containers, /containers/<name>, /containers/<name>/<action>,
// /health, /metrics. A GET route also answers HEAD.
var routes = map[string]map[string]route{
	"containers": {
		http.MethodPost: {call: "create", key: "container", status: http.StatusCreated, body: requiredBody, params: createParams},
		http.MethodGet:  {call: "ps", key: "containers", body: noBody, params: listParams},
	},
	"containers/*": {
		http.MethodDelete: {call: "rm", key: "container", body: noBody, params: removeParams},
	},
	"containers/*/start": {
		http.MethodPost: {call: "start", key: "container", body: optionalBody, params: withName},
	},
	"containers/*/stop": {
		http.MethodPost: {call: "stop", key: "container", body: optionalBody, params: withName},
	},
	"containers/*/logs": {
		http.MethodGet: {call: "logs", key: "logs", body: noBody, params: logsParams},
	},
	"containers/*/users": {
		http.MethodPost: {call: "add_user", key: "user", body: requiredBody, params: withName},
	},
	"containers/*/files": {
		http.MethodPost: {call: "add_file", key: "file", body: requiredBody, params: withName},
	},
	"containers/*/exec": {
		http.MethodPost: {call: "exec", key: "execution", body: requiredBody, params: withName},
	},
	"health": {
		http.MethodGet: {call: "health", key: "health", body: noBody, params: nothing},
	},
	"metrics": {
		http.MethodGet: {call: "metrics", key: "metrics", body: noBody, params: nothing},
	},
}

// match finds the routes of a path and the container it names, if any.
// It splits the escaped path, so a name holding an encoded "/" stays one
// segment (and is then refused by the method as a name).
func match(escapedPath string) (byMethod map[string]route, name string, ok bool) {
	rest, found := strings.CutPrefix(escapedPath, Prefix)
	if !found {
		return nil, "", false
	}
	parts := strings.Split(rest, "/")
	shape := parts[0]
	if len(parts) >= 2 {
		if parts[0] != "containers" || parts[1] == "" {
			return nil, "", false
		}
		n, err := url.PathUnescape(parts[1])
		if err != nil {
			return nil, "", false
		}
		name = n
		shape = "containers/*"
		if len(parts) == 3 {
			shape += "/" + parts[2]
		} else if len(parts) > 3 {
			return nil, "", false
		}
	}
	byMethod, ok = routes[shape]
	return byMethod, name, ok
}

// allowed lists the methods a route answers, for 405's Allow header.
func allowed(byMethod map[string]route) string {
	var list []string
	for m := range byMethod {
		list = append(list, m)
		if m == http.MethodGet {
			list = append(list, http.MethodHead)
		}
	}
	list = append(list, http.MethodOptions)
	slices.Sort(list)
	return strings.Join(list, ", ")
}

// serveRoute answers one request of a known route: read and translate,
// call, shape.
func (s *Server) serveRoute(w *recorder, r *http.Request, rt route, name string) {
	w.call = rt.call
	b, aerr := s.readBody(w, r, rt.body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	params, aerr := rt.params(name, r.URL.Query(), b)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var raw json.RawMessage
	if params != nil {
		var err error
		if raw, err = json.Marshal(params); err != nil {
			writeError(w, newError(http.StatusInternalServerError, "InternalError", "internal error: encoding params: "+err.Error()))
			return
		}
	}
	ctx, cancel := context.WithTimeoutCause(r.Context(), s.callTimeout(), errHTTPTimeout)
	defer cancel()
	res, err := s.call(ctx, rt.call, raw)
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrShuttingDown) {
			// Whatever the method made of its cancellation, the reason is
			// the shutdown, as the dispatcher says for its own calls.
			writeError(w, &apiError{status: http.StatusServiceUnavailable, typ: "Cancelled", message: "Request cancelled: the worker is shutting down"})
			return
		}
		if errors.Is(context.Cause(ctx), errHTTPTimeout) {
			aerr := fromCall(err)
			aerr.status, aerr.typ = http.StatusRequestTimeout, "Timeout"
			aerr.message = fmt.Sprintf("the request did not finish within %s, the HTTP server's bound on one request (it follows --request-timeout and --max-timeout)", s.callTimeout())
			writeError(w, aerr)
			return
		}
		writeError(w, fromCall(err))
		return
	}
	if rt.call == "health" {
		if aerr := unhealthy(res); aerr != nil {
			// The seed's /health answered 503 when Podman was down; the
			// details still say what the worker sees.
			writeError(w, aerr, member{"health", res})
			return
		}
	}
	status := rt.status
	if status == 0 {
		status = http.StatusOK
	}
	writeSuccess(w, status, rt.key, res)
}

var errHTTPTimeout = errors.New("http request timeout")

// readBody reads a route's JSON object within the body limit.
func (s *Server) readBody(w *recorder, r *http.Request, rule bodyRule) (body, *apiError) {
	if rule == noBody {
		// GET, HEAD and DELETE carry nothing the seed read; a body sent
		// anyway is left unread (and the connection closed after the answer
		// if it was large).
		return nil, nil
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		return nil, tooLarge(s.opts.MaxBodyBytes)
	}
	// The bodies being read or held by calls share one budget: forty
	// clients each sending 15 MiB of a 16 MiB body and stalling held
	// 793 MB. A body of unknown length reserves the most it may be.
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = s.opts.MaxBodyBytes
	}
	if !s.bodies.acquire(reserve) {
		return nil, newError(http.StatusTooManyRequests, "Busy", fmt.Sprintf("the worker holds %s of request bodies already, its bound (--max-queued-bytes); try again shortly", formatBytes(s.opts.MaxBodyBytesInFlight)))
	}
	w.release = append(w.release, func() { s.bodies.release(reserve) })
	data, err := io.ReadAll(http.MaxBytesReader(w.ResponseWriter, r.Body, s.opts.MaxBodyBytes)) // net/http's own writer, which closes the connection after a 413
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, tooLarge(s.opts.MaxBodyBytes)
	case err != nil:
		return nil, newError(http.StatusBadRequest, "BadRequest", "reading the request body: "+err.Error())
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		if rule == requiredBody {
			return nil, newError(http.StatusBadRequest, "BadRequest", "Request must be JSON: send a JSON object with Content-Type: application/json")
		}
		return body{}, nil
	}
	// Only JSON is read: the seed's validate_json refused anything else,
	// and a page in a browser can send text/plain or a form to any address
	// without asking first (no CORS preflight), but not application/json.
	if !isJSON(r.Header.Get("Content-Type")) {
		return nil, newError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Request must be JSON: the Content-Type is %q; send application/json", r.Header.Get("Content-Type")))
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, newError(http.StatusBadRequest, "BadRequest", "Invalid JSON in the request body: "+strings.TrimPrefix(fmt.Sprint(err), "json: "))
	}
	if data[0] != '{' {
		return nil, newError(http.StatusBadRequest, "BadRequest", "the request body must be a JSON object of named fields, got "+rpc.JSONKind(data))
	}
	var b body
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, newError(http.StatusBadRequest, "BadRequest", "Invalid JSON in the request body: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return b, nil
}

func tooLarge(limit int64) *apiError {
	return newError(http.StatusRequestEntityTooLarge, "TooLarge",
		fmt.Sprintf("the request body is larger than %d bytes, this worker's limit (--http-max-body)", limit))
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// unhealthy is health's result turned into a 503 when Podman does not answer.
func unhealthy(res any) *apiError {
	raw, err := json.Marshal(res)
	if err != nil {
		return nil
	}
	var h struct {
		Status string `json:"status"`
		Podman struct {
			Socket string `json:"socket"`
			Error  string `json:"error"`
		} `json:"podman"`
	}
	if json.Unmarshal(raw, &h) != nil || h.Status == "ok" {
		return nil
	}
	msg := h.Podman.Error
	if msg == "" {
		msg = "Podman is not reachable at " + h.Podman.Socket
	}
	// Like every other 503, it names the socket that does not answer.
	e := newError(http.StatusServiceUnavailable, "Unavailable", msg)
	e.fields = map[string]any{"socket": h.Podman.Socket}
	return e
}

// The params of each route.

func nothing(string, url.Values, body) (body, *apiError) { return nil, nil }

// withName adds the container of the path to the body's fields. A body
// that names a container too must name the same one.
func withName(name string, _ url.Values, b body) (body, *apiError) {
	if b == nil {
		b = body{}
	}
	if raw, ok := b["name"]; ok {
		var inBody string
		if json.Unmarshal(raw, &inBody) != nil || inBody != name {
			return nil, badField("name", "the body names %s, the path %q: leave it out of the body", raw, name)
		}
	}
	raw, _ := json.Marshal(name)
	b["name"] = raw
	return b, nil
}

func createParams(_ string, _ url.Values, b body) (body, *apiError) {
	if raw, ok := b["ports"]; ok {
		ports, aerr := translatePorts(raw)
		if aerr != nil {
			return nil, aerr
		}
		b["ports"] = ports
		// Published ports need a network, and the worker's containers have
		// none unless asked: a client that publishes ports asks for one. The
		// worker's --network-modes still decides whether bridge is allowed.
		if _, set := b["network_mode"]; !set && !bytes.Equal(bytes.TrimSpace(ports), []byte("[]")) && !bytes.Equal(bytes.TrimSpace(ports), []byte("null")) {
			b["network_mode"] = json.RawMessage(`"bridge"`)
		}
	}
	if raw, ok := b["volumes"]; ok {
		volumes, aerr := translateVolumes(raw)
		if aerr != nil {
			return nil, aerr
		}
		b["volumes"] = volumes
	}
	return b, nil
}

// listParams lists running and stopped containers, as the seed's
// list_containers did.
func listParams(string, url.Values, body) (body, *apiError) {
	return body{"all": json.RawMessage("true")}, nil
}

func removeParams(name string, q url.Values, _ body) (body, *apiError) {
	b, _ := withName(name, nil, nil)
	if v, ok := q["force"]; ok {
		force, err := parseBool(v[len(v)-1])
		if err != nil {
			return nil, badField("force", "%v", err)
		}
		b["force"], _ = json.Marshal(force)
	}
	return b, nil
}

func logsParams(name string, q url.Values, _ body) (body, *apiError) {
	b, _ := withName(name, nil, nil)
	if v, ok := q["tail"]; ok {
		tail, err := strconv.Atoi(strings.TrimSpace(v[len(v)-1]))
		if err != nil {
			return nil, badField("tail", "must be a whole number of lines such as 100, got %q", v[len(v)-1])
		}
		b["tail"], _ = json.Marshal(tail)
	}
	return b, nil
}

// parseBool reads a query flag: true, 1, yes, on, or false, 0, no, off,
// and an empty value as false, in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false, got %q", s)
}
