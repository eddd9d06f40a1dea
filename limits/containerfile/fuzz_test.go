package containerfile

import (
	"errors"
	"testing"

	"github.com/podman-worker/podman-worker/fault"
)

// FuzzCheck: no input panics Check or CheckTriggers, every refusal is an
// *fault.Error on "file", and an accepted file's images are non-empty refs.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		"FROM alpine\nRUN --mount=type=tmpfs,target=/t true\n",
		"FROM alpine\nRUN --mount=type=cache,id=../../..,target=/mnt cat /mnt/etc/shadow\n",
		"ARG X=alpine\nFROM $X AS a\nCOPY --from=a /x /x\nCOPY --from=busybox /y /y\n",
		"# escape=`\nFROM alpine\nRUN --mount=type=tmpfs,target=/t `\n --mount=type=cache,target=/c true\n",
		"FROM alpine\nRUN <<EOF\nADD http://127.0.0.1/x /x\nEOF\n",
		"FROM scratch\nENV A=http B=x\nADD ${A:-y}://${B} /s\n",
		"FROM alpine\nONBUILD RUN --mount=type=bind,source=.,target=/m true\n",
		"FROM alpine\nLABEL \"io.podman-worker.owner\"=x\n",
		"FROM alpine\nRUN --mount=type=bind,source=../x,target=/m true\n",
		"ONBUILD\nFROM\nARG\nLABEL\nENV\n",
		"FROM alpine\nADD a b \\\\\nCOPY http://127.0.0.1/x /s\n",
		"# syntax=x\n# escape=`\nFROM alpine\r\nRUN echo `\r\r\n",
	} {
		f.Add(seed, true)
	}
	ctx := f.TempDir()
	f.Fuzz(func(t *testing.T, src string, binds bool) {
		opts := Options{ContextDir: ctx, AllowContextBinds: binds, BuildArgs: map[string]string{"X": "alpine"}}
		images, err := Check([]byte(src), opts)
		if err != nil {
			var e *fault.Error
			if !errors.As(err, &e) || e.Fields["field"] != "file" {
				t.Fatalf("error %v is not a *fault.Error on file", err)
			}
			return
		}
		for _, im := range images {
			if im.Ref == "" || im.Line < 1 {
				t.Fatalf("bad image %+v", im)
			}
		}
		_ = CheckTriggers([]string{src}, opts)
	})
}
