package containerfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/podman-worker/podman-worker/fault"
)

// checkCase is one Containerfile sent to Check and what must come back:
// the images (when err is ""), or an error of kind with err in its message
// and, when line > 0, that line in its data.
type checkCase struct {
	name   string
	src    string
	opts   Options
	images []Image
	kind   fault.Kind
	err    string // substring of the message; "" means Check must accept
	line   int
}

func runCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			images, err := Check([]byte(tt.src), tt.opts)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Check refused: %v", err)
				}
				if !reflect.DeepEqual(images, tt.images) {
					t.Fatalf("images: got %+v, want %+v", images, tt.images)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check accepted it (images %+v); want an error with %q", images, tt.err)
			}
			assertError(t, err, tt.kind, tt.err, tt.line)
		})
	}
}

func assertError(t *testing.T, err error, kind fault.Kind, msg string, line int) {
	t.Helper()
	var e *fault.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is a %T, not a *fault.Error", err, err)
	}
	if e.Kind != kind {
		t.Errorf("kind %v, want %v (%s)", e.Kind, kind, e.Message)
	}
	if !strings.Contains(e.Message, msg) {
		t.Errorf("message %q does not say %q", e.Message, msg)
	}
	if e.Fields["field"] != "file" {
		t.Errorf("field %v, want file", e.Fields["field"])
	}
	if line > 0 && e.Fields["line"] != line {
		t.Errorf("line %v, want %d (%s)", e.Fields["line"], line, e.Message)
	}
}

// TestCheckMountAttacks: each mount that reached the host is refused with
// default flags, on the line of its RUN.
func TestCheckMountAttacks(t *testing.T) {
	ctx := contextDir(t)
	open := Options{ContextDir: ctx, AllowContextBinds: true}
	runCases(t, []checkCase{
		{name: "cache id climbing to / is refused (CVE-2024-9675)",
			src:  "FROM alpine\nRUN --mount=type=cache,id=../../../../../../../../..,target=/mnt head /mnt/etc/shadow\n",
			kind: fault.KindForbidden, err: "Containerfile line 2: RUN --mount=type=cache is not allowed: cache mounts keep data on the host between builds", line: 2},
		{name: "buildah's published CVE-2024-9675 reproducer is refused",
			src:  "FROM alpine\nRUN --mount=type=cache,id=../../../../../../../../../../../root/dir,target=/var/tmp \\\nls -l /var/tmp && cat /var/tmp/file.txt && touch /var/tmp/BREAKOUT\n",
			kind: fault.KindForbidden, err: "type=cache", line: 2},
		{name: "a shared cache id is refused even when binds are open",
			src: "FROM alpine\nRUN --mount=type=cache,id=shared,target=/c true\n", opts: open,
			kind: fault.KindForbidden, err: "type=cache is not allowed", line: 2},
		{name: "bind of a context symlink to / is refused by default and names the flag",
			src:  "FROM alpine\nRUN --mount=type=bind,source=hostroot,target=/mnt,rw cat /mnt/etc/shadow\n",
			kind: fault.KindForbidden, err: "--build-context-mounts", line: 2},
		{name: "bind of a context symlink to / is refused with binds open (rw)",
			src: "FROM alpine\nRUN --mount=type=bind,source=hostroot,target=/mnt,rw cat /mnt/etc/shadow\n", opts: open,
			kind: fault.KindForbidden, err: "read-only binds only", line: 2},
		{name: "bind of a context symlink to / is refused with binds open (ro)",
			src: "FROM alpine\nRUN --mount=type=bind,source=hostroot,target=/mnt cat /mnt/etc/shadow\n", opts: open,
			kind: fault.KindForbidden, err: "hostroot is a symlink", line: 2},
		{name: "bind of a stage's symlink to / is refused by default",
			src:  "FROM alpine AS base\nRUN ln -s / /rootlink\nFROM alpine\nRUN --mount=type=bind,from=base,source=/rootlink,target=/mnt cat /mnt/etc/shadow\n",
			kind: fault.KindForbidden, err: "type=bind is not allowed", line: 4},
		{name: "bind of a stage's symlink to / is refused with binds open",
			src:  "FROM alpine AS base\nRUN ln -s / /rootlink\nFROM alpine\nRUN --mount=type=bind,from=base,source=/rootlink,target=/mnt cat /mnt/etc/shadow\n",
			opts: open, kind: fault.KindForbidden, err: "CVE-2024-1753", line: 4},
		{name: "the published CVE-2024-1753 pattern (stage symlink, rw) is refused with binds open",
			src:  "FROM alpine as base\nRUN ln -s / /rootdir\nFROM alpine\nRUN --mount=type=bind,from=base,source=/rootdir,destination=/rootdir,rw ls -al /rootdir\n",
			opts: open, kind: fault.KindForbidden, err: "from=", line: 4},
		{name: "bind-propagation (CVE-2024-9407) is refused with binds open",
			src: "FROM alpine\nRUN --mount=type=bind,source=src,target=/m,bind-propagation=rshared true\n", opts: open,
			kind: fault.KindForbidden, err: "bind,bind-propagation is not allowed", line: 2},
		{name: "relabel z of the context is refused with binds open",
			src: "FROM alpine\nRUN --mount=type=bind,source=src,target=/m,z true\n", opts: open,
			kind: fault.KindForbidden, err: "bind,z is not allowed", line: 2},
		{name: "ro=false (rw to buildkit) is refused",
			src: "FROM alpine\nRUN --mount=type=bind,source=src,target=/m,ro=false true\n", opts: open,
			kind: fault.KindForbidden, err: "write ro alone", line: 2},
		{name: "a mount without type= is a bind and is refused",
			src:  "FROM alpine\nRUN --mount=source=hostroot,target=/mnt cat /mnt/etc/shadow\n",
			kind: fault.KindForbidden, err: "without type= is not allowed", line: 2},
		{name: "an untyped mount after a bind is refused with binds open (Podman 4 reuses the type)",
			src: "FROM alpine\nRUN --mount=type=bind,source=src,target=/s --mount=source=src,target=/t true\n", opts: open,
			kind: fault.KindForbidden, err: "the type of the mount before it", line: 2},
		{name: "a secret mount is refused",
			src:  "FROM alpine\nRUN --mount=type=secret,id=x,src=/etc/shadow cat /run/secrets/x\n",
			kind: fault.KindForbidden, err: "secret mounts read files from the host", line: 2},
		{name: "an ssh mount is refused",
			src:  "FROM alpine\nRUN --mount=type=ssh true\n",
			kind: fault.KindForbidden, err: "type=ssh is not allowed", line: 2},
		{name: "an unknown mount type is refused",
			src:  "FROM alpine\nRUN --mount=type=volume,target=/v true\n",
			kind: fault.KindForbidden, err: "only type=tmpfs", line: 2},
		{name: "type given twice (tmpfs then cache) is refused",
			src:  "FROM alpine\nRUN --mount=type=tmpfs,type=cache,target=/c true\n",
			kind: fault.KindForbidden, err: "names type twice", line: 2},
		{name: "a quoted mount value is refused or read as the cache it is",
			src:  "FROM alpine\nRUN --mount=\"type=cache,target=/c\" true\n",
			kind: fault.KindForbidden, err: "type=cache", line: 2},
		{name: "a variable in a mount value is refused",
			src:  "ARG T=cache\nFROM alpine\nARG T\nRUN --mount=type=$T,target=/c true\n",
			kind: fault.KindForbidden, err: "without quotes, escapes, variables or blanks", line: 4},
		{name: "an unknown tmpfs option is refused",
			src:  "FROM alpine\nRUN --mount=type=tmpfs,target=/t,tmpcopyup true\n",
			kind: fault.KindForbidden, err: "tmpfs,tmpcopyup is not allowed", line: 2},
	})
}

// TestCheckRunFlags: RUN flags other than --mount are refused, whatever
// their case or spelling.
func TestCheckRunFlags(t *testing.T) {
	runCases(t, []checkCase{
		{name: "--network=host is refused", src: "FROM alpine\nRUN --network=host wget http://127.0.0.1:2375/\n",
			kind: fault.KindForbidden, err: "RUN --network is not allowed", line: 2},
		{name: "--security=insecure is refused", src: "FROM alpine\nRUN --security=insecure true\n",
			kind: fault.KindForbidden, err: "RUN --security is not allowed", line: 2},
		{name: "--device is refused", src: "FROM alpine\nRUN --device=/dev/sda true\n",
			kind: fault.KindForbidden, err: "RUN --device is not allowed", line: 2},
		{name: "an unknown flag is refused", src: "FROM alpine\nRUN --whatever=1 true\n",
			kind: fault.KindForbidden, err: "RUN --whatever is not allowed: the worker allows only --mount=type=tmpfs", line: 2},
		{name: "--MOUNT in capitals is no flag of ours and is refused", src: "FROM alpine\nRUN --MOUNT=type=cache,target=/c true\n",
			kind: fault.KindForbidden, err: "RUN --MOUNT is not allowed", line: 2},
		{name: "--mount without a value is invalid", src: "FROM alpine\nRUN --mount true\n",
			kind: fault.KindInvalidParams, err: "needs a value", line: 2},
	})
}

// TestCheckSyntaxTricks: continuations, escape directives, case, JSON
// form and heredocs cannot hide a refused form.
func TestCheckSyntaxTricks(t *testing.T) {
	runCases(t, []checkCase{
		{name: "a cache mount on a continuation line after a tmpfs one is refused",
			src:  "FROM alpine\nRUN --mount=type=tmpfs,target=/t \\\n    --mount=type=cache,target=/c true\n",
			kind: fault.KindForbidden, err: "type=cache", line: 2},
		{name: "a comment inside a continuation does not end the flags",
			src:  "FROM alpine\nRUN --mount=type=tmpfs,target=/t \\\n# hi\n    --mount=type=cache,target=/c true\n",
			kind: fault.KindForbidden, err: "type=cache", line: 2},
		{name: "escape=` joins lines with a backtick and the cache mount is seen",
			src:  "# escape=`\nFROM alpine\nRUN --mount=type=tmpfs,target=/t `\n    --mount=type=cache,target=/c true\n",
			kind: fault.KindForbidden, err: "type=cache", line: 3},
		{name: "escape=` makes a trailing backslash text; the next line is an unknown instruction",
			src:  "# escape=`\nFROM alpine\nRUN echo \\\n--mount=type=cache,target=/c true\n",
			kind: fault.KindInvalidParams, err: "unknown instruction --MOUNT=TYPE=CACHE,TARGET=/C", line: 4},
		{name: "an escaped backslash that the old parser takes for a continuation (ADD swallowing a COPY of a URL) is refused",
			src:  "FROM alpine\nADD a b \\\\\nCOPY http://127.0.0.1:8080/secret.txt /s\n",
			kind: fault.KindForbidden, err: "Podman 4 and Podman 5 would cut the file into different instructions", line: 2},
		{name: "a carriage return that hides a continuation from the old parser is refused",
			src:  "FROM alpine\nRUN echo \\\r\r\nADD http://127.0.0.1:8080/secret.txt /s\n",
			kind: fault.KindForbidden, err: "different instructions", line: 2},
		{name: "escape=` after a syntax directive (ignored by Podman 4) is refused",
			src:  "# syntax=docker/dockerfile:1\n# escape=`\nFROM alpine\nRUN echo `\nADD http://127.0.0.1:8080/secret.txt /s\n",
			kind: fault.KindForbidden, err: "put any # escape= on the first line", line: 1},
		{name: "lower-case run --mount=type=cache is refused",
			src:  "from alpine\nrun --mount=type=cache,target=/c true\n",
			kind: fault.KindForbidden, err: "RUN --mount=type=cache is not allowed", line: 2},
		{name: "JSON-form RUN with a cache mount is refused",
			src:  "FROM alpine\nRUN --mount=type=cache,target=/c [\"sh\", \"-c\", \"true\"]\n",
			kind: fault.KindForbidden, err: "type=cache", line: 2},
		{name: "a RUN heredoc hiding ADD of a URL is refused on the RUN's line",
			src:  "FROM alpine\nRUN <<EOF\nADD http://127.0.0.1:8080/secret.txt /s\nEOF\n",
			kind: fault.KindForbidden, err: "Podman 4's and Podman 5's parsers read heredocs differently", line: 2},
		{name: "a COPY heredoc is refused",
			src:  "FROM alpine\nCOPY <<EOF /x\nhello\nEOF\n",
			kind: fault.KindForbidden, err: "COPY with a heredoc", line: 2},
		{name: "a heredoc inside a shell command is refused",
			src:  "FROM alpine\nRUN cat > /x <<-'END'\n\tRUN --mount=type=cache,target=/c true\n\tEND\n",
			kind: fault.KindForbidden, err: "heredoc", line: 2},
		{name: "an unknown instruction is invalid",
			src:  "FROM alpine\nFETCH http://127.0.0.1/x\n",
			kind: fault.KindInvalidParams, err: "unknown instruction FETCH", line: 2},
		{name: "an unknown instruction before FROM is invalid",
			src:  "FETCH x\nFROM alpine\n",
			kind: fault.KindInvalidParams, err: "unknown instruction FETCH", line: 1},
		{name: "RUN before FROM is invalid",
			src:  "RUN true\nFROM alpine\n",
			kind: fault.KindInvalidParams, err: "only ARG may come before it", line: 1},
		{name: "no FROM at all is invalid",
			src:  "ARG X=1\n",
			kind: fault.KindInvalidParams, err: "no FROM instruction"},
		{name: "an empty file is invalid",
			src:  "# nothing\n",
			kind: fault.KindInvalidParams, err: "no instructions"},
		{name: "a bad escape directive is the parser's error",
			src:  "# escape=x\nFROM alpine\n",
			kind: fault.KindInvalidParams, err: "invalid escape token"},
		{name: "an unterminated JSON-less heredoc is the parser's error",
			src:  "FROM alpine\nRUN <<EOF\ntrue\n",
			kind: fault.KindInvalidParams, err: "unterminated heredoc"},
		{name: "a file over MaxSize is refused before parsing",
			src:  "FROM alpine\n" + strings.Repeat("#", MaxSize),
			kind: fault.KindForbidden, err: "larger than 1048576 bytes"},
	})
}

// TestCheckFetches: ADD of URLs and git sources, FROM and COPY --from of
// images, however the reference is spelled or expanded.
func TestCheckFetches(t *testing.T) { runCases(t, fetchCases) }

// fetchCases are TestCheckFetches'.
var fetchCases = []checkCase{
	{name: "ADD of a URL on the host's loopback is refused",
		src:  "FROM alpine\nADD http://127.0.0.1:8080/secret.txt /s\n",
		kind: fault.KindForbidden, err: "ADD http://127.0.0.1:8080/secret.txt is not allowed", line: 2},
	{name: "JSON-form ADD of a URL is refused",
		src:  "FROM alpine\nADD [\"http://127.0.0.1:8080/secret.txt\", \"/s\"]\n",
		kind: fault.KindForbidden, err: "is fetched by Podman", line: 2},
	{name: "ADD of a URL from an ARG default is refused",
		src:  "FROM scratch\nARG U=http://127.0.0.1:8080/secret.txt\nADD $U /s\n",
		kind: fault.KindForbidden, err: "it expands to http://127.0.0.1:8080/secret.txt", line: 3},
	{name: "ADD of a URL from ENV is refused",
		src:  "FROM alpine\nENV U=http://127.0.0.1:8080/secret.txt\nADD ${U} /s\n",
		kind: fault.KindForbidden, err: "it expands to", line: 3},
	{name: "ADD of a URL from build_args over a harmless default is refused",
		src:  "FROM scratch\nARG U=local.txt\nADD $U /s\n",
		opts: Options{BuildArgs: map[string]string{"U": "http://127.0.0.1:8080/secret.txt"}},
		kind: fault.KindForbidden, err: "it expands to http://", line: 3},
	{name: "ADD of a URL put together from two variables is refused",
		src:  "FROM scratch\nENV A=http B=127.0.0.1:8080/s\nADD ${A}://${B} /s\n",
		kind: fault.KindForbidden, err: "is fetched by Podman", line: 3},
	{name: "ADD of a variable no instruction sets is refused",
		src:  "FROM scratch\nADD $URL /s\n",
		kind: fault.KindForbidden, err: "$URL is not set", line: 2},
	{name: "ADD of an ARG in a stage from an external image is refused (its ENV may win)",
		src:  "FROM alpine\nARG F=app.tar\nADD $F /s\n",
		kind: fault.KindForbidden, err: "base image's ENV may override it", line: 3},
	{name: "ADD of an ARG in a stage built FROM a stage of an external image is refused",
		src:  "FROM alpine AS base\nFROM base\nARG F=app.tar\nADD $F /s\n",
		kind: fault.KindForbidden, err: "base image's ENV may override it", line: 4},
	{name: "ADD of a variable set by both ENV and ARG is refused",
		src:  "FROM scratch\nENV F=http://127.0.0.1/x\nARG F=local\nADD $F /s\n",
		kind: fault.KindForbidden, err: "set by both ENV and ARG", line: 4},
	{name: "ADD of an scp-like git source is refused",
		src:  "FROM alpine\nADD git@github.com:moby/buildkit.git /src\n",
		kind: fault.KindForbidden, err: "git source", line: 2},
	{name: "ADD of a git URL with a ref is refused",
		src:  "FROM alpine\nADD https://github.com/moby/buildkit.git#v0.10.1 /src\n",
		kind: fault.KindForbidden, err: "git source", line: 2},
	{name: "ADD of a schemeless github.com path is refused",
		src:  "FROM alpine\nADD github.com/moby/buildkit /src\n",
		kind: fault.KindForbidden, err: "git source", line: 2},
	{name: "ADD --checksum is refused",
		src:  "FROM alpine\nADD --checksum=sha256:0 app.tar /x\n",
		kind: fault.KindForbidden, err: "ADD --checksum is not allowed", line: 2},
	{name: "ADD --keep-git-dir is refused",
		src:  "FROM alpine\nADD --keep-git-dir=true x /x\n",
		kind: fault.KindForbidden, err: "ADD --keep-git-dir is not allowed", line: 2},
	{name: "FROM a registry on the host's loopback is returned for the worker to refuse",
		src:    "FROM 127.0.0.1:5000/img\nRUN true\n",
		images: []Image{{Ref: "127.0.0.1:5000/img", Line: 1, Instruction: "FROM"}}},
	{name: "FROM $X with X from build_args is returned expanded",
		src:    "ARG X=alpine\nFROM $X\n",
		opts:   Options{BuildArgs: map[string]string{"X": "127.0.0.1:5000/img"}},
		images: []Image{{Ref: "127.0.0.1:5000/img", Line: 2, Instruction: "FROM"}}},
	{name: "FROM $X with X only in build_args (no ARG) is refused",
		src:  "FROM $X\n",
		opts: Options{BuildArgs: map[string]string{"X": "127.0.0.1:5000/img"}},
		kind: fault.KindForbidden, err: "$X is not set", line: 1},
	{name: "FROM $X declared but left unset is refused",
		src:  "ARG X\nFROM $X\n",
		kind: fault.KindForbidden, err: "$X is not set", line: 2},
	{name: "FROM of a ref still holding a $ after expansion is refused",
		src:  "ARG X=\\$HOME\nFROM $X\n",
		kind: fault.KindForbidden, err: "still holds a $", line: 2},
	{name: "FROM of a platform ARG's default is refused (Podman sets its own value)",
		src:  "ARG TARGETARCH=amd64\nFROM alpine:$TARGETARCH\n",
		kind: fault.KindForbidden, err: "$TARGETARCH is an argument Podman sets itself", line: 2},
	{name: "FROM of a platform ARG the caller passes is returned",
		src:    "ARG TARGETARCH=amd64\nFROM alpine:$TARGETARCH\n",
		opts:   Options{BuildArgs: map[string]string{"TARGETARCH": "arm64"}},
		images: []Image{{Ref: "alpine:arm64", Line: 2, Instruction: "FROM"}}},
	{name: "ADD of a proxy ARG's default is refused (Podman takes the host's)",
		src:  "FROM scratch\nARG HTTP_PROXY=file\nADD $HTTP_PROXY /x\n",
		kind: fault.KindForbidden, err: "$HTTP_PROXY is an argument Podman sets itself", line: 3},
	{name: "FROM with a flag other than --platform is refused",
		src:  "FROM --network=host alpine\n",
		kind: fault.KindForbidden, err: "FROM --network is not allowed", line: 1},
	{name: "FROM of something that is no image reference is invalid",
		src:  "FROM Alpine:Latest:x\n",
		kind: fault.KindInvalidParams, err: "not an image reference", line: 1},
	{name: "COPY --from=<image> is returned",
		src: "FROM alpine\nCOPY --from=docker.io/library/busybox:1.36 /bin/busybox /bin/\n",
		images: []Image{{Ref: "alpine", Line: 1, Instruction: "FROM"},
			{Ref: "docker.io/library/busybox:1.36", Line: 2, Instruction: "COPY --from"}}},
	{name: "COPY --from=<loopback image> is returned for the worker to refuse",
		src:    "FROM scratch\nCOPY --from=127.0.0.1:5000/img /x /x\n",
		images: []Image{{Ref: "127.0.0.1:5000/img", Line: 2, Instruction: "COPY --from"}}},
	{name: "COPY --from=$X is refused",
		src:  "ARG X=alpine\nFROM scratch\nARG X\nCOPY --from=$X /x /x\n",
		kind: fault.KindForbidden, err: "COPY --from=$X is not allowed", line: 4},
	{name: "COPY --from=0 of a named stage passes (buildah maps the number to the name)",
		src: "FROM scratch AS build\nFROM scratch\nCOPY --from=0 /x /x\n"},
	{name: "COPY --from=1 of a later stage is refused (buildah indexes its stages unchecked)",
		src:  "FROM scratch\nCOPY --from=1 /x /x\nFROM scratch\n",
		kind: fault.KindForbidden, err: "no earlier stage has it", line: 2},
	{name: "COPY --from=99 is refused",
		src:  "FROM scratch\nCOPY --from=99 /x /x\n",
		kind: fault.KindForbidden, err: "no earlier stage has it", line: 2},
	{name: "COPY --from=00 (a number Atoi reads, not written plainly) is refused",
		src:  "FROM scratch\nFROM scratch\nCOPY --from=00 /x /x\n",
		kind: fault.KindForbidden, err: "no earlier stage has it", line: 3},
	{name: "COPY --from=-1 is refused",
		src:  "FROM scratch\nCOPY --from=-1 /x /x\n",
		kind: fault.KindForbidden, err: "no earlier stage has it", line: 2},
	{name: "FROM 0 is an image, never stage 0",
		src:    "FROM scratch\nFROM 0\n",
		images: []Image{{Ref: "0", Line: 2, Instruction: "FROM"}}},
	{name: "COPY --from of its own stage by name is an image, not a stage",
		src:    "FROM scratch AS a\nCOPY --from=a /x /x\n",
		images: []Image{{Ref: "a", Line: 2, Instruction: "COPY --from"}}},
	{name: "COPY --from of its own stage by number is refused",
		src:  "FROM scratch\nCOPY --from=0 /x /x\n",
		kind: fault.KindForbidden, err: "no earlier stage has it", line: 2},
	{name: "COPY --from of a later stage is an image, not a stage",
		src:    "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\n",
		images: []Image{{Ref: "b", Line: 2, Instruction: "COPY --from"}}},
	{name: "COPY --from of a stage name in another case is returned as an image",
		src:    "FROM scratch AS Build\nFROM scratch\nCOPY --from=build /x /x\n",
		images: []Image{{Ref: "build", Line: 3, Instruction: "COPY --from"}}},
	{name: "COPY --parents is refused",
		src:  "FROM alpine\nCOPY --parents a /x\n",
		kind: fault.KindForbidden, err: "COPY --parents is not allowed", line: 2},
	{name: "COPY --from twice is refused",
		src:  "FROM scratch AS a\nFROM scratch\nCOPY --from=a --from=evil /x /x\n",
		kind: fault.KindForbidden, err: "not allowed twice", line: 3},
}

// TestCheckLabelsAndOnbuild: the worker's labels cannot be forged, and
// ONBUILD carries no refused instruction into a later build.
func TestCheckLabelsAndOnbuild(t *testing.T) {
	runCases(t, []checkCase{
		{name: "LABEL io.podman-worker.owner=x is refused",
			src:  "FROM alpine\nLABEL io.podman-worker.owner=x\n",
			kind: fault.KindForbidden, err: "labels are set by the worker itself", line: 2},
		{name: "a quoted worker label key is refused",
			src:  "FROM alpine\nLABEL a=b \"io.podman-worker.owner\"=x\n",
			kind: fault.KindForbidden, err: "labels are set by the worker itself", line: 2},
		{name: "an escaped worker label key is refused",
			src:  "FROM alpine\nLABEL io\\.podman-worker.owner=x\n",
			kind: fault.KindForbidden, err: "labels are set by the worker itself", line: 2},
		{name: "an old-form worker label in capitals is refused",
			src:  "FROM alpine\nLABEL IO.Podman-Worker.owner x\n",
			kind: fault.KindForbidden, err: "labels are set by the worker itself", line: 2},
		{name: "a label key with a variable is refused",
			src:  "FROM alpine\nARG P=io.podman-worker\nLABEL ${P}.owner=x\n",
			kind: fault.KindForbidden, err: "without variables", line: 3},
		{name: "ONBUILD RUN --mount=type=cache is refused on its line",
			src:  "FROM alpine\nONBUILD RUN --mount=type=cache,target=/c true\n",
			kind: fault.KindForbidden, err: "RUN --mount=type=cache is not allowed", line: 2},
		{name: "ONBUILD ADD of a URL is refused",
			src:  "FROM alpine\nONBUILD ADD http://127.0.0.1/x /x\n",
			kind: fault.KindForbidden, err: "ADD http://127.0.0.1/x is not allowed", line: 2},
		{name: "ONBUILD ADD of a variable is refused (the later build sets it)",
			src:  "FROM scratch\nENV F=a\nONBUILD ADD $F /x\n",
			kind: fault.KindForbidden, err: "$F is not set", line: 3},
		{name: "ONBUILD COPY --from is refused",
			src:  "FROM scratch AS a\nFROM scratch\nONBUILD COPY --from=a /x /x\n",
			kind: fault.KindForbidden, err: "ONBUILD COPY --from is not allowed", line: 3},
		{name: "ONBUILD RUN with a heredoc is refused",
			src:  "FROM alpine\nONBUILD RUN <<EOF\ntrue\nEOF\n",
			kind: fault.KindForbidden, err: "heredoc", line: 2},
		{name: "ONBUILD FROM is invalid",
			src:  "FROM alpine\nONBUILD FROM evil\n",
			kind: fault.KindInvalidParams, err: "ONBUILD FROM is not allowed", line: 2},
		{name: "ONBUILD LABEL of a worker label is refused",
			src:  "FROM alpine\nONBUILD LABEL io.podman-worker.owner=x\n",
			kind: fault.KindForbidden, err: "labels are set by the worker", line: 2},
		{name: "ONBUILD of an unknown instruction is invalid",
			src:  "FROM alpine\nONBUILD FETCH x\n",
			kind: fault.KindInvalidParams, err: "unknown instruction FETCH", line: 2},
		{name: "a flag on ENV is refused",
			src:  "FROM alpine\nENV --x=1 A=b\n",
			kind: fault.KindForbidden, err: "ENV --x is not allowed", line: 2},
	})
}

// TestCheckAllows: ordinary builds pass and return their external images.
func TestCheckAllows(t *testing.T) {
	ctx := contextDir(t)
	open := Options{ContextDir: ctx, AllowContextBinds: true}
	multi := `# syntax=docker/dockerfile:1
ARG GO=1.22
FROM --platform=$BUILDPLATFORM golang:${GO} AS build
WORKDIR /src
COPY --chown=1000:1000 --chmod=0644 go.mod go.sum ./
RUN --mount=type=tmpfs,target=/root/.cache,size=512m \
    go build -o /app .
FROM build
RUN go test ./...
FROM alpine
COPY --from=build /app /app
COPY --from=1 --link /app /app2
ADD --chown=1:1 app.tar.gz /srv/
LABEL org.opencontainers.image.title=app version="1.0"
ENV PATH=/bin
USER 1000
EXPOSE 8080
HEALTHCHECK --interval=30s CMD ["/app", "-health"]
ONBUILD RUN make
ENTRYPOINT ["/app"]
`
	runCases(t, []checkCase{
		{name: "a multi-stage build returns only its external image, expanded",
			src:    multi,
			images: []Image{{Ref: "golang:1.22", Line: 3, Instruction: "FROM"}, {Ref: "alpine", Line: 10, Instruction: "FROM"}}},
		{name: "build_args override the meta ARG of FROM",
			src:    "ARG GO=1.22\nFROM golang:${GO}\n",
			opts:   Options{BuildArgs: map[string]string{"GO": "1.23"}},
			images: []Image{{Ref: "golang:1.23", Line: 2, Instruction: "FROM"}}},
		{name: "a stage built FROM a stage adds no image",
			src:    "FROM alpine AS base\nFROM base\nRUN true\n",
			images: []Image{{Ref: "alpine", Line: 1, Instruction: "FROM"}}},
		{name: "FROM scratch returns nothing",
			src: "FROM scratch\nCOPY a /a\n"},
		{name: "tmpfs mounts with their options pass",
			src:    "FROM alpine\nRUN --mount=type=tmpfs,target=/t,tmpfs-size=64m,mode=1777 --mount=type=tmpfs,dst=/u,ro true\n",
			images: []Image{{Ref: "alpine", Line: 1, Instruction: "FROM"}}},
		{name: "ADD of a file named by ENV in a scratch stage passes",
			src: "FROM scratch\nENV F=app.tar\nADD $F /x\n"},
		{name: "an ENV inherited from an earlier stage expands ADD",
			src: "FROM scratch AS a\nENV F=app.tar\nFROM a\nADD ${F} /x\n"},
		{name: "escape=` on the first line with a backtick continuation passes",
			src:    "# escape=`\nFROM alpine\nRUN echo `\n    hi\n",
			images: []Image{{Ref: "alpine", Line: 2, Instruction: "FROM"}}},
		{name: "CRLF line ends with a continuation pass",
			src:    "FROM alpine\r\nRUN echo \\\r\n    hi\r\n",
			images: []Image{{Ref: "alpine", Line: 1, Instruction: "FROM"}}},
		{name: "comments and blank lines inside a continuation pass",
			src:    "FROM alpine\nRUN echo \\\n  # note\n\n    hi\n",
			images: []Image{{Ref: "alpine", Line: 1, Instruction: "FROM"}}},
		{name: "lower-case instructions pass",
			src:    "from alpine\nrun echo hi\n",
			images: []Image{{Ref: "alpine", Line: 1, Instruction: "FROM"}}},
		{name: "a context bind of a directory passes when opened",
			src: "FROM scratch\nRUN --mount=type=bind,source=src,target=/src,ro make\n", opts: open},
		{name: "a context bind of a file passes when opened",
			src: "FROM scratch\nRUN --mount=type=bind,src=src/a.txt,target=/a make\n", opts: open},
		{name: "a context bind of the whole context passes when opened",
			src: "FROM scratch\nRUN --mount=type=bind,target=/ctx make\n", opts: open},
	})
}

// TestCheckContextBinds: with --build-context-mounts open, sources that
// leave the context or pass a symlink are refused.
func TestCheckContextBinds(t *testing.T) {
	ctx := contextDir(t)
	open := Options{ContextDir: ctx, AllowContextBinds: true}
	bind := func(src string) string {
		return "FROM scratch\nRUN --mount=type=bind,source=" + src + ",target=/m true\n"
	}
	runCases(t, []checkCase{
		{name: "a symlink to a context dir is refused", src: bind("lnk"), opts: open, kind: fault.KindForbidden, err: "lnk is a symlink", line: 2},
		{name: "a symlink reached through .. is refused", src: bind("src/../hostroot/etc"), opts: open, kind: fault.KindForbidden, err: "hostroot is a symlink", line: 2},
		{name: "a symlink in the middle of the path is refused", src: bind("d/up/src"), opts: open, kind: fault.KindForbidden, err: "d/up is a symlink", line: 2},
		{name: "a source above the context is refused", src: bind("../etc"), opts: open, kind: fault.KindForbidden, err: "leaves the build context", line: 2},
		{name: "an absolute source is refused", src: bind("/etc"), opts: open, kind: fault.KindForbidden, err: "relative to the build context", line: 2},
		{name: "a missing source is refused", src: bind("nothere"), opts: open, kind: fault.KindForbidden, err: "does not exist", line: 2},
		{name: "a fifo is refused", src: bind("fifo"), opts: open, kind: fault.KindForbidden, err: "not a directory or a regular file", line: 2},
		{name: "no context dir refuses every bind", src: bind("src"), opts: Options{AllowContextBinds: true}, kind: fault.KindForbidden, err: "no build context", line: 2},
		{name: "source and src together are refused", src: "FROM scratch\nRUN --mount=type=bind,source=src,src=lnk,target=/m true\n", opts: open, kind: fault.KindForbidden, err: "both source and src", line: 2},
	})
}

// TestCheckMessagesAreShort: a refusal quotes at most a short piece of a
// long word (here a 10,000-character FROM), not the whole of it.
func TestCheckMessagesAreShort(t *testing.T) {
	src := "FROM " + strings.Repeat("${a:-", 2000) + "x" + strings.Repeat("}", 2000) + "\n"
	_, err := Check([]byte(src), Options{})
	var e *fault.Error
	if !errors.As(err, &e) || e.Kind != fault.KindForbidden {
		t.Fatalf("got %v, want a Forbidden error", err)
	}
	if len(e.Message) > 400 {
		t.Fatalf("message is %d bytes long: %.200s", len(e.Message), e.Message)
	}
}

// TestCheckTriggers: a base image's ONBUILD triggers get the same rules.
func TestCheckTriggers(t *testing.T) {
	tests := []struct {
		name     string
		triggers []string
		kind     fault.Kind
		err      string // "" means accepted
	}{
		{"plain RUN and COPY pass", []string{"RUN make", "COPY . /src"}, 0, ""},
		{"a cache mount is refused, naming trigger 2", []string{"RUN true", "RUN --mount=type=cache,target=/c true"}, fault.KindForbidden, "ONBUILD trigger 2: RUN --mount=type=cache"},
		{"ADD of a URL is refused", []string{"ADD http://127.0.0.1/x /x"}, fault.KindForbidden, "ADD http://127.0.0.1/x is not allowed"},
		{"a second instruction after a newline is refused", []string{"RUN true\nADD http://127.0.0.1/x /x"}, fault.KindForbidden, "not a single line"},
		{"COPY --from is refused", []string{"COPY --from=img /a /b"}, fault.KindForbidden, "ONBUILD COPY --from"},
		{"FROM is invalid", []string{"FROM evil"}, fault.KindInvalidParams, "ONBUILD FROM"},
		{"an unterminated heredoc is refused", []string{"RUN <<EOF"}, fault.KindForbidden, "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTriggers(tt.triggers, Options{})
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", tt.err)
			}
			assertError(t, err, tt.kind, tt.err, 0)
		})
	}
}

// contextDir makes a build context with a directory, a file, a fifo and
// the symlinks an attacker would plant: one to /, one to a sibling, one
// back up the tree.
func contextDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "src", "a.txt"), []byte("a"), 0o644))
	must(os.Symlink("/", filepath.Join(dir, "hostroot")))
	must(os.Symlink("src", filepath.Join(dir, "lnk")))
	must(os.Symlink("..", filepath.Join(dir, "d", "up")))
	must(mkfifo(filepath.Join(dir, "fifo")))
	return dir
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
