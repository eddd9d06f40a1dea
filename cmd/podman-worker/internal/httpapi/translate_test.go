package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// podman-py's shapes become the worker's lists; lists pass as they are,
// and a bad shape is a 400 that names "ports" or "volumes".
func TestTranslatePorts(t *testing.T) {
	for _, tc := range []struct {
		sent, want, err string
	}{
		{sent: `["8080:80"]`, want: `["8080:80"]`},
		{sent: `null`, want: `null`},
		{sent: `{"8080/tcp": 8080}`, want: `["8080:8080/tcp"]`},
		{sent: `{"80": "8080"}`, want: `["8080:80/tcp"]`},
		{sent: `{"53/udp": 5353, "80/tcp": 8080}`, want: `["5353:53/udp","8080:80/tcp"]`},
		{sent: `{"80/tcp": null}`, want: `["0:80/tcp"]`},
		{sent: `{"80/tcp": ["127.0.0.1", 8080]}`, want: `["127.0.0.1:8080:80/tcp"]`},
		{sent: `{"80/tcp": ["127.0.0.1"]}`, want: `["127.0.0.1:0:80/tcp"]`},
		{sent: `{"80/tcp": [8080, 8081]}`, want: `["8080:80/tcp","8081:80/tcp"]`},
		{sent: `{}`, want: `[]`},
		{sent: `{"http": 8080}`, err: `"ports": the key "http" is not a container port such as "80/tcp"`},
		{sent: `{"80/tcp": 70000}`, err: `"ports": "80/tcp": the host side must be a port number`},
		{sent: `{"80/tcp": ["127.0.0.1", "x"]}`, err: `the host side must be`},
		{sent: `{"80/tcp": true}`, err: `the host side must be`},
		{sent: `{"80/tcp": []}`, err: `the host side must be`},
	} {
		got, aerr := translatePorts(json.RawMessage(tc.sent))
		if tc.err != "" {
			if aerr == nil || aerr.status != 400 || aerr.fields["field"] != "ports" || !strings.Contains(aerr.message, tc.err) {
				t.Errorf("ports %s: got %s, %+v; want a 400 on \"ports\" saying %q", tc.sent, got, aerr, tc.err)
			}
			continue
		}
		if aerr != nil || string(got) != tc.want {
			t.Errorf("ports %s: got %s, %+v; want %s", tc.sent, got, aerr, tc.want)
		}
	}
}

func TestTranslateVolumes(t *testing.T) {
	for _, tc := range []struct {
		sent, want, err string
	}{
		{sent: `["data:/data", "/srv:/srv:ro"]`, want: `["data:/data", "/srv:/srv:ro"]`},
		{sent: `{"/srv": {"bind": "/mnt", "mode": "ro"}}`, want: `["/srv:/mnt:ro"]`},
		{sent: `{"data": {"bind": "/data"}, "/a": {"bind": "/b", "mode": "rw"}}`, want: `["/a:/b:rw","data:/data"]`},
		{sent: `{"/srv": "/srv"}`, want: `["/srv:/srv"]`},
		{sent: `{"/srv": {"mode": "ro"}}`, err: `"volumes": "/srv": the value must be {"bind"`},
		{sent: `{"/srv": {"bind": "/x", "extended_mode": ["z"]}}`, err: `the value must be`},
		{sent: `{"a:b": {"bind": "/x"}}`, err: `the key "a:b" must be a host path or a volume name`},
	} {
		got, aerr := translateVolumes(json.RawMessage(tc.sent))
		if tc.err != "" {
			if aerr == nil || aerr.status != 400 || aerr.fields["field"] != "volumes" || !strings.Contains(aerr.message, tc.err) {
				t.Errorf("volumes %s: got %s, %+v; want a 400 on \"volumes\" saying %q", tc.sent, got, aerr, tc.err)
			}
			continue
		}
		if aerr != nil || string(got) != tc.want {
			t.Errorf("volumes %s: got %s, %+v; want %s", tc.sent, got, aerr, tc.want)
		}
	}
}
