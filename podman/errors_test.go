package podman

import (
	"errors"
	"strings"
	"testing"

	"github.com/containers/podman/v5/pkg/errorhandling"
	"github.com/podman-worker/podman-worker/fault"
	"github.com/rs/zerolog"
)

// Answers leaked host paths and other owners' ids: each message below is
// one Podman gave (seen by the red team) and what the caller now gets.
// The caller's own paths in a message stay.
func TestClassifyScrubsHostPathsAndForeignIDs(t *testing.T) {
	c, err := New("unix:///nonexistent/podman.sock", Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("7f3a9c01", 8)
	for _, tc := range []struct {
		name, msg, because string
		status             int
		leaks              []string
		keeps              string
	}{
		{"volume _data in a 500",
			`crun: mkdir /var/lib/containers/storage/volumes/data/_data/x: permission denied: OCI permission denied`, "", 500,
			[]string{"/var/lib/containers/storage", "_data"}, "OCI permission denied"},
		{"overlay merged in a 500",
			`runc create failed: open /tmp/pw/root/overlay/` + id + `/merged/etc/passwd: no such file or directory`, "", 500,
			[]string{"/overlay/", "merged", id}, "no such file or directory"},
		{"build folder in a build error",
			`building at STEP "RUN false": while running runtime: exit status 1: /var/tmp/libpod_builder123456/build/Containerfile`, "", 500,
			[]string{"libpod_builder"}, `STEP "RUN false"`},
		{"another owner's id in a 409",
			`the container name "web" is already in use by ` + id + `. You have to remove (or rename) that container to be able to reuse that name: that name is already in use`,
			"that name is already in use", 409, []string{id}, `the container name "web" is already in use`},
		{"the caller's own path stays",
			`executable file "/app/main.py" not found in $PATH`, "", 500, nil, `"/app/main.py"`},
	} {
		model := &errorhandling.ErrorModel{Message: tc.msg, Because: tc.because, ResponseCode: tc.status}
		got := fault.As(c.Classify(model))
		for _, leak := range tc.leaks {
			if strings.Contains(got.Message, leak) {
				t.Errorf("%s: Podman said %q; the caller got %q, which still holds %q", tc.name, tc.msg, got.Message, leak)
			}
		}
		if !strings.Contains(got.Message, tc.keeps) {
			t.Errorf("%s: the caller got %q; want it to keep %q", tc.name, got.Message, tc.keeps)
		}
		if !errors.Is(got, model) && got.Unwrap() == nil {
			t.Errorf("%s: the Podman error is not kept for the log", tc.name)
		}
	}
}
