package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The seed's clients send podman-py's shapes (its create_container passed
// the request's fields to podman-py), the worker's methods take the seed
// CLI's: ports and volumes are the two that differ, and are rewritten here
// into the worker's lists. Everything else (command as a string or an
// array, environment as an object or a KEY=VALUE list) the methods already
// take as clients send it, so it passes through untouched and the method
// checks it.

// body is a request's JSON object, field by field.
type body map[string]json.RawMessage

// badField is a 400 naming the field at fault, as the methods' own are.
func badField(field, format string, args ...any) *apiError {
	e := newError(400, "BadRequest", fmt.Sprintf("Invalid params: %q: ", field)+fmt.Sprintf(format, args...))
	e.fields = map[string]any{"field": field}
	return e
}

// translatePorts rewrites "ports" into the worker's ["[IP:]HOST:CONTAINER[/proto]"]:
//
//	["8080:80", "127.0.0.1:8080:80/udp"]  as they are
//	{"80/tcp": 8080}                      "8080:80/tcp"
//	{"80": "8080"}                        "8080:80/tcp"
//	{"80/tcp": null}                      "0:80/tcp"        (a free host port)
//	{"80/tcp": ["127.0.0.1", 8080]}       "127.0.0.1:8080:80/tcp" (podman-py's tuple)
//	{"80/tcp": ["127.0.0.1"]}             "127.0.0.1:0:80/tcp"
//	{"80/tcp": [8080, 8081]}              "8080:80/tcp", "8081:80/tcp"
//
// Keys are sorted, so the container's ports do not depend on the order of
// a JSON object. The values' ranges are checked by the method.
func translatePorts(raw json.RawMessage) (json.RawMessage, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return raw, nil // a list (or null, or a wrong type the method names)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, badField("ports", "%v", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []string{}
	for _, key := range keys {
		port, proto, _ := strings.Cut(key, "/")
		if proto == "" {
			proto = "tcp"
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil || strings.ContainsAny(key, ": ") {
			return nil, badField("ports", "the key %q is not a container port such as \"80/tcp\"", key)
		}
		ctr := port + "/" + proto
		hosts, err := hostPorts(m[key])
		if err != nil {
			return nil, badField("ports", "%q: %s", key, err)
		}
		for _, h := range hosts {
			out = append(out, h+":"+ctr)
		}
	}
	raw, _ = json.Marshal(out) // a list of strings always encodes
	return raw, nil
}

// hostPorts reads one value of podman-py's ports object into "[IP:]PORT" items.
func hostPorts(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	const want = "the host side must be a port number, null (a free port), [IP, PORT], [IP] or a list of port numbers"
	if bytes.Equal(raw, []byte("null")) {
		return []string{"0"}, nil
	}
	if port, ok := portValue(raw); ok {
		return []string{port}, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return nil, fmt.Errorf("%s, got %s", want, raw)
	}
	var ip string
	if json.Unmarshal(list[0], &ip) == nil {
		// podman-py's (address, port) tuple, sent as an array.
		switch {
		case len(list) == 1:
			return []string{bracket(ip) + ":0"}, nil
		case len(list) == 2:
			if port, ok := portValue(list[1]); ok {
				return []string{bracket(ip) + ":" + port}, nil
			}
		}
		return nil, fmt.Errorf("%s, got %s", want, raw)
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		port, ok := portValue(item)
		if !ok {
			return nil, fmt.Errorf("%s, got %s", want, raw)
		}
		out = append(out, port)
	}
	return out, nil
}

// portValue reads a port given as a JSON number or a string of digits.
func portValue(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if _, err := strconv.ParseUint(s, 10, 16); err == nil {
			return s, true
		}
		return "", false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	if _, err := strconv.ParseUint(n.String(), 10, 16); err != nil {
		return "", false
	}
	return n.String(), true
}

// bracket keeps an IPv6 address apart from the port that follows it.
func bracket(ip string) string {
	if strings.Contains(ip, ":") && !strings.HasPrefix(ip, "[") {
		return "[" + ip + "]"
	}
	return ip
}

// translateVolumes rewrites "volumes" into the worker's ["SOURCE:TARGET[:OPTIONS]"]:
//
//	["data:/data", "/srv:/srv:ro"]                 as they are
//	{"/srv": {"bind": "/srv", "mode": "ro"}}       "/srv:/srv:ro"  (podman-py's)
//	{"data": {"bind": "/data"}}                    "data:/data"    (mode rw)
//	{"/srv": "/srv"}                               "/srv:/srv"
//
// The method checks the paths, names and options.
func translateVolumes(raw json.RawMessage) (json.RawMessage, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return raw, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, badField("volumes", "%v", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []string{}
	for _, src := range keys {
		if src == "" || strings.Contains(src, ":") {
			return nil, badField("volumes", "the key %q must be a host path or a volume name, without ':'", src)
		}
		var target string
		if json.Unmarshal(m[src], &target) == nil {
			out = append(out, src+":"+target)
			continue
		}
		var spec struct {
			Bind string `json:"bind"`
			Mode string `json:"mode"`
		}
		dec := json.NewDecoder(bytes.NewReader(m[src]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil || spec.Bind == "" {
			return nil, badField("volumes", "%q: the value must be {\"bind\": \"/path/in/container\", \"mode\": \"rw\" or \"ro\"} or the path in the container, got %s", src, m[src])
		}
		item := src + ":" + spec.Bind
		if spec.Mode != "" {
			item += ":" + spec.Mode
		}
		out = append(out, item)
	}
	raw, _ = json.Marshal(out) // a list of strings always encodes
	return raw, nil
}
