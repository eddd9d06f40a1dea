package argparse

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestCLIParse reads command lines as the seed's argparse parser did. Each
// row is the argv after the worker's own flags and what came out: the
// method called with its params (JSON, keys sorted), the first line of
// the help on stdout for -h, the last line of argparse's usage error with
// exit status 2, or the message (exit status 1) of a value argparse took
// but JSON cannot carry (--cpus inf). The outcomes were checked against a replica of the
// seed's parser under CPython 3.10, 3.11 and 3.12, which agree; 3.13 wraps
// usage lines differently and refuses "-ax" as unrecognized.
func TestCLIParse(t *testing.T) {
	for _, row := range parseRows {
		got, stdout, stderr, code := outcome(row.args)
		switch {
		case got != "":
		case code == 0:
			got, _, _ = strings.Cut(stdout, "\n")
		default:
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			got = lines[len(lines)-1]
		}
		if got != row.want || code != row.code {
			t.Errorf("argv %q:\n got %s (exit %d)\nwant %s (exit %d)\nstderr: %s", row.args, got, code, row.want, row.code, stderr)
		}
	}
}

// parseRows are TestCLIParse's command lines and outcomes.
var parseRows = []struct {
	args []string
	want string
	code int
}{
	// Commands without arguments; the documented examples.
	{[]string{"version"}, `version {}`, 0},
	{[]string{"ping"}, `ping {}`, 0},
	{[]string{"prune"}, `prune {}`, 0},
	{[]string{"info"}, `info {}`, 0},
	{[]string{"info", "--format", "{{.Host.Arch}}"}, `info {"format":"{{.Host.Arch}}"}`, 0},

	// Short forms, attached values (-fX), --opt=value, unique prefixes.
	{[]string{"info", "-f", "{{.Host.Arch}}"}, `info {"format":"{{.Host.Arch}}"}`, 0},
	{[]string{"info", "-f{{.Host.Arch}}"}, `info {"format":"{{.Host.Arch}}"}`, 0},
	{[]string{"info", "--format={{.Host.Arch}}"}, `info {"format":"{{.Host.Arch}}"}`, 0},
	{[]string{"info", "--form", "x"}, `info {"format":"x"}`, 0},
	{[]string{"info", "--f", "x"}, `info {"format":"x"}`, 0},

	// info takes no argument: "--" and what follows are left over.
	{[]string{"info", "--", "x"}, `podman-worker: error: unrecognized arguments: -- x`, 2},

	// build: the documented example, short forms, attached and = values, repeated --build-arg.
	{[]string{"build", ".", "--tag", "myapp:latest", "--file", "Dockerfile", "--platform", "linux/amd64"}, `build {"context":".","file":"Dockerfile","platform":"linux/amd64","tag":"myapp:latest"}`, 0},
	{[]string{"build", ".", "-t", "a", "-f", "D"}, `build {"context":".","file":"D","tag":"a"}`, 0},
	{[]string{"build", "-ta", "-fD", "."}, `build {"context":".","file":"D","tag":"a"}`, 0},
	{[]string{"build", "--tag=a", "."}, `build {"context":".","tag":"a"}`, 0},
	{[]string{"build", ".", "--build-arg", "A=1", "--build-arg", "B=2"}, `build {"build_args":["A=1","B=2"],"context":"."}`, 0},
	{[]string{"build", ".", "--build", "A=1"}, `build {"build_args":["A=1"],"context":"."}`, 0},
	{[]string{"build", ".", "--b=A=1"}, `build {"build_args":["A=1"],"context":"."}`, 0},
	{[]string{"build", ".", "--no-cache", "--force"}, `build {"context":".","force":true,"no_cache":true}`, 0},
	{[]string{"build", ".", "--no", "--fo"}, `build {"context":".","force":true,"no_cache":true}`, 0},

	// build refusals: ambiguous prefix, a value for a flag, no context, two contexts, no value.
	{[]string{"build", ".", "--f", "x"}, `podman-worker build: error: ambiguous option: --f could match --file, --force`, 2},
	{[]string{"build", ".", "--force=yes"}, `podman-worker build: error: argument --force: ignored explicit argument 'yes'`, 2},
	{[]string{"build"}, `podman-worker build: error: the following arguments are required: context`, 2},
	{[]string{"build", ".", ".."}, `podman-worker: error: unrecognized arguments: ..`, 2},
	{[]string{"build", "--tag", "x"}, `podman-worker build: error: the following arguments are required: context`, 2},
	{[]string{"build", ".", "--tag"}, `podman-worker build: error: argument --tag/-t: expected one argument`, 2},
	{[]string{"build", ".", "-t"}, `podman-worker build: error: argument --tag/-t: expected one argument`, 2},

	// Flags: -a, a prefix, combined short flags (-ah), and a value where none is taken.
	{[]string{"images"}, `images {}`, 0},
	{[]string{"images", "--all"}, `images {"all":true}`, 0},
	{[]string{"images", "-a"}, `images {"all":true}`, 0},
	{[]string{"images", "--a"}, `images {"all":true}`, 0},
	{[]string{"images", "-ah"}, `usage: podman-worker images [-h] [--all]`, 0},
	{[]string{"images", "-ax"}, `podman-worker images: error: argument --all/-a: ignored explicit argument 'x'`, 2},
	{[]string{"images", "-a=x"}, `podman-worker images: error: argument --all/-a: ignored explicit argument 'x'`, 2},
	{[]string{"images", "--all="}, `podman-worker images: error: argument --all/-a: ignored explicit argument ''`, 2},
	{[]string{"images", "x"}, `podman-worker: error: unrecognized arguments: x`, 2},
	{[]string{"images", "-h"}, `usage: podman-worker images [-h] [--all]`, 0},

	// One positional argument: "--" makes "-x" an argument; "-1" is one anyway (it looks like a number).
	{[]string{"exists", "myapp:latest"}, `exists {"image":"myapp:latest"}`, 0},
	{[]string{"exists"}, `podman-worker exists: error: the following arguments are required: image`, 2},
	{[]string{"exists", "a", "b"}, `podman-worker: error: unrecognized arguments: b`, 2},
	{[]string{"exists", "--", "-x"}, `exists {"image":"-x"}`, 0},
	{[]string{"exists", "-x"}, `podman-worker exists: error: the following arguments are required: image`, 2},
	{[]string{"exists", "-1"}, `exists {"image":"-1"}`, 0},
	{[]string{"exists", "--", "a"}, `exists {"image":"a"}`, 0},
	{[]string{"exists", "a", "--"}, `exists {"image":"a"}`, 0},
	{[]string{"inspect", "myapp:latest"}, `inspect {"image":"myapp:latest"}`, 0},
	{[]string{"inspect", "myapp:latest", "--format", "{{.Size}}"}, `inspect {"format":"{{.Size}}","image":"myapp:latest"}`, 0},
	{[]string{"inspect", "-f", "{{.Size}}", "img"}, `inspect {"format":"{{.Size}}","image":"img"}`, 0},
	{[]string{"inspect", "img", "-f{{.Os}}"}, `inspect {"format":"{{.Os}}","image":"img"}`, 0},
	{[]string{"inspect", "-h"}, `usage: podman-worker inspect [-h] [--format FORMAT] image`, 0},
	{[]string{"rmi", "myapp:latest"}, `rmi {"image":"myapp:latest"}`, 0},
	{[]string{"rmi", "myapp:latest", "--force"}, `rmi {"force":true,"image":"myapp:latest"}`, 0},
	{[]string{"rmi", "-f", "img"}, `rmi {"force":true,"image":"img"}`, 0},
	{[]string{"rmi", "img", "-fh"}, `usage: podman-worker rmi [-h] [--force] image`, 0},
	{[]string{"rmi", "img", "-hf"}, `usage: podman-worker rmi [-h] [--force] image`, 0},

	// run: the documented examples.
	{[]string{"run", "myapp:latest", "--name", "mycontainer", "--env", "KEY=VALUE", "--mount", "/host/path:/container/path:Z,rshared", "--memory", "20m", "--cpus", "0.5", "--timeout", "10"}, `run {"cpus":0.5,"env":["KEY=VALUE"],"image":"myapp:latest","memory":"20m","mounts":["/host/path:/container/path:Z,rshared"],"name":"mycontainer","timeout":10}`, 0},
	{[]string{"run", "img", "--name", "c", "--mount", "functions_data:/app/functions:Z,rshared", "--memory", "20m", "--cpus", "0.5", "--timeout", "30"}, `run {"cpus":0.5,"image":"img","memory":"20m","mounts":["functions_data:/app/functions:Z,rshared"],"name":"c","timeout":30}`, 0},
	{[]string{"run", "myapp", "--timeout", "30"}, `run {"image":"myapp","timeout":30}`, 0},
	{[]string{"run", "myapp", "--memory", "20m", "--memory-swap", "50m", "--cpus", "0.5"}, `run {"cpus":0.5,"image":"myapp","memory":"20m","memory_swap":"50m"}`, 0},
	{[]string{"run", "myapp", "--network-mode", "none"}, `run {"image":"myapp","network_mode":"none"}`, 0},

	// --detach is type=bool with an optional value: bare it is true (the
	// seed's document lists it with none), and any non-empty value is true.
	{[]string{"run", "busybox", "-d", "False"}, `run {"detach":true,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-d", ""}, `run {"detach":false,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--detach", ""}, `run {"detach":false,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--detach="}, `run {"detach":false,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-dFalse"}, `run {"detach":true,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-d0"}, `run {"detach":true,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-d"}, `run {"detach":true,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--detach"}, `run {"detach":true,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-d", "-c", "echo", "hi"}, `run {"command":"echo hi","detach":true,"image":"busybox"}`, 0},
	{[]string{"run", "-d", "busybox"}, `podman-worker run: error: the following arguments are required: image`, 2},
	{[]string{"run", "-d", "x", "busybox"}, `run {"detach":true,"image":"busybox"}`, 0},

	// Repeatable options keep their order, in every spelling.
	{[]string{"run", "busybox", "-p", "8080:80", "-p8081:81", "--port=1:2", "--po", "3:4"}, `run {"image":"busybox","ports":["8080:80","8081:81","1:2","3:4"]}`, 0},
	{[]string{"run", "busybox", "-eK=V", "-e", "A=1", "--env=B=2", "--env", "C=3"}, `run {"env":["K=V","A=1","B=2","C=3"],"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--en", "C=3"}, `podman-worker run: error: ambiguous option: --en could match --entrypoint, --env`, 2},
	{[]string{"run", "busybox", "--entrypoint", "/bin/sh", "--ent=/bin/echo"}, `run {"entrypoint":"/bin/echo","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-v", "/a:/b", "-v/c:/d"}, `run {"image":"busybox","volumes":["/a:/b","/c:/d"]}`, 0},
	{[]string{"run", "busybox", "-m", "x:/y", "-mz:/w"}, `run {"image":"busybox","mounts":["x:/y","z:/w"]}`, 0},
	{[]string{"run", "busybox", "-w", "/tmp"}, `run {"image":"busybox","workdir":"/tmp"}`, 0},
	{[]string{"run", "busybox", "-w/tmp"}, `run {"image":"busybox","workdir":"/tmp"}`, 0},
	{[]string{"run", "busybox", "--workdir=/tmp"}, `run {"image":"busybox","workdir":"/tmp"}`, 0},
	{[]string{"run", "busybox", "--work", "/tmp"}, `run {"image":"busybox","workdir":"/tmp"}`, 0},

	// -c takes the words up to the next option (nargs='*') and joins them; a word starting with "-" ends it unless attached or given with =.
	{[]string{"run", "busybox", "-c", "echo hi"}, `run {"command":"echo hi","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-c", "echo", "hi"}, `run {"command":"echo hi","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-c", "echo", "hi", "--timeout", "3"}, `run {"command":"echo hi","image":"busybox","timeout":3}`, 0},
	{[]string{"run", "-c", "echo", "hi", "busybox"}, `podman-worker run: error: the following arguments are required: image`, 2},
	{[]string{"run", "busybox", "-c"}, `run {"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-c", "--timeout", "3"}, `run {"image":"busybox","timeout":3}`, 0},
	{[]string{"run", "busybox", "-c", "-x"}, `podman-worker: error: unrecognized arguments: -x`, 2},
	{[]string{"run", "busybox", "-c", "-x y"}, `run {"command":"-x y","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-c=-x"}, `run {"command":"-x","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-c-x"}, `run {"command":"-x","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--run-command=-x"}, `run {"command":"-x","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--run", "ls", "-l"}, `podman-worker: error: unrecognized arguments: -l`, 2},
	{[]string{"run", "busybox", "-c", "ls", "--", "-l"}, `podman-worker: error: unrecognized arguments: -- -l`, 2},
	{[]string{"run", "busybox", "-c", "echo", "-1"}, `run {"command":"echo -1","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-c", ""}, `run {"command":"","image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-cecho", "hi"}, `podman-worker: error: unrecognized arguments: hi`, 2},
	{[]string{"run", "busybox", "-c", "a", "-c", "b"}, `run {"command":"b","image":"busybox"}`, 0},

	// Prefixes: unique ones are accepted, ambiguous ones refused; an exact name wins (--memory).
	{[]string{"run", "busybox", "--no-auto-remove"}, `run {"auto_remove":false,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--no-auto"}, `run {"auto_remove":false,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--no"}, `run {"auto_remove":false,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--n", "x"}, `podman-worker run: error: ambiguous option: --n could match --name, --no-auto-remove, --network-mode`, 2},
	{[]string{"run", "busybox", "--na", "x"}, `run {"image":"busybox","name":"x"}`, 0},
	{[]string{"run", "busybox", "--network", "bridge"}, `run {"image":"busybox","network_mode":"bridge"}`, 0},
	{[]string{"run", "busybox", "--net=bridge"}, `run {"image":"busybox","network_mode":"bridge"}`, 0},
	{[]string{"run", "busybox", "--mem", "1"}, `podman-worker run: error: ambiguous option: --mem could match --memory, --memory-swap`, 2},
	{[]string{"run", "busybox", "--mem=1"}, `podman-worker run: error: ambiguous option: --mem=1 could match --memory, --memory-swap`, 2},
	{[]string{"run", "busybox", "--memory", "30m"}, `run {"image":"busybox","memory":"30m"}`, 0},
	{[]string{"run", "busybox", "--memory-s", "1g"}, `run {"image":"busybox","memory_swap":"1g"}`, 0},
	{[]string{"run", "busybox", "--memory=30m"}, `run {"image":"busybox","memory":"30m"}`, 0},
	{[]string{"run", "busybox", "--m", "1"}, `podman-worker run: error: ambiguous option: --m could match --mount, --memory, --memory-swap`, 2},
	{[]string{"run", "busybox", "--me", "1"}, `podman-worker run: error: ambiguous option: --me could match --memory, --memory-swap`, 2},

	// --cpus is type=float, as Python's float() reads it.
	{[]string{"run", "busybox", "--cpus", "true"}, `podman-worker run: error: argument --cpus: invalid float value: 'true'`, 2},
	{[]string{"run", "busybox", "--cpus", "1e3"}, `run {"cpus":1000,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", " 0.25 "}, `run {"cpus":0.25,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", "1_0"}, `run {"cpus":10,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", "-1"}, `run {"cpus":-1,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", "-.5"}, `run {"cpus":-0.5,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", "inf", "extra"}, `podman-worker: error: unrecognized arguments: extra`, 2},
	{[]string{"run", "busybox", "--cpus", "-1e3"}, `podman-worker run: error: argument --cpus: expected one argument`, 2},
	{[]string{"run", "busybox", "--cpus", "0x10"}, `podman-worker run: error: argument --cpus: invalid float value: '0x10'`, 2},
	{[]string{"run", "busybox", "--cpus", "inf"}, `Invalid params: "cpus": "inf" is not a finite number`, 1},
	{[]string{"run", "busybox", "--cpus", "NaN"}, `Invalid params: "cpus": "NaN" is not a finite number`, 1},
	{[]string{"run", "busybox", "--cpus", ".5"}, `run {"cpus":0.5,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", "5."}, `run {"cpus":5,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", "1__0"}, `podman-worker run: error: argument --cpus: invalid float value: '1__0'`, 2},
	{[]string{"run", "busybox", "--cpus", "٣"}, `run {"cpus":3,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpus", ""}, `podman-worker run: error: argument --cpus: invalid float value: ''`, 2},
	{[]string{"run", "busybox", "--cpus=2"}, `run {"cpus":2,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--cpu", "2"}, `run {"cpus":2,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--c", "2"}, `run {"cpus":2,"image":"busybox"}`, 0},

	// --timeout is type=int, as Python's int() reads it; values are quoted as Python's repr does.
	{[]string{"run", "busybox", "--timeout", "2.5"}, `podman-worker run: error: argument --timeout: invalid int value: '2.5'`, 2},
	{[]string{"run", "busybox", "--timeout", "007"}, `run {"image":"busybox","timeout":7}`, 0},
	{[]string{"run", "busybox", "--timeout", " +7 "}, `run {"image":"busybox","timeout":7}`, 0},
	{[]string{"run", "busybox", "--timeout", "-5"}, `run {"image":"busybox","timeout":-5}`, 0},
	{[]string{"run", "busybox", "--timeout", "1_000"}, `run {"image":"busybox","timeout":1000}`, 0},
	{[]string{"run", "busybox", "--time", "3"}, `run {"image":"busybox","timeout":3}`, 0},
	{[]string{"run", "busybox", "--t", "3"}, `run {"image":"busybox","timeout":3}`, 0},
	{[]string{"run", "busybox", "--timeout", "it's"}, `podman-worker run: error: argument --timeout: invalid int value: "it's"`, 2},
	{[]string{"run", "busybox", "--timeout", "a\"b'c"}, `podman-worker run: error: argument --timeout: invalid int value: 'a"b\'c'`, 2},
	{[]string{"run", "busybox", "--timeout", "x\ty\n"}, `podman-worker run: error: argument --timeout: invalid int value: 'x\ty\n'`, 2},
	{[]string{"run", "busybox", "--timeout", "99999999999999999999999"}, `run {"image":"busybox","timeout":99999999999999999999999}`, 0},

	// Refusals: a missing image, unknown options, extra arguments, an option without its value.
	{[]string{"run"}, `podman-worker run: error: the following arguments are required: image`, 2},
	{[]string{"run", "--bogus"}, `podman-worker run: error: the following arguments are required: image`, 2},
	{[]string{"run", "busybox", "--bogus"}, `podman-worker: error: unrecognized arguments: --bogus`, 2},
	{[]string{"run", "busybox", "--bogus", "x"}, `podman-worker: error: unrecognized arguments: --bogus x`, 2},
	{[]string{"run", "--bogus", "x", "busybox"}, `podman-worker: error: unrecognized arguments: --bogus busybox`, 2},
	{[]string{"run", "busybox", "extra"}, `podman-worker: error: unrecognized arguments: extra`, 2},
	{[]string{"run", "busybox", "extra", "--name", "n", "more"}, `podman-worker: error: unrecognized arguments: extra more`, 2},
	{[]string{"run", "busybox", "--name"}, `podman-worker run: error: argument --name: expected one argument`, 2},
	{[]string{"run", "busybox", "--name", "--timeout", "3"}, `podman-worker run: error: argument --name: expected one argument`, 2},
	{[]string{"run", "busybox", "--name", "-x"}, `podman-worker run: error: argument --name: expected one argument`, 2},

	// A value that starts with "-" is taken when attached, when it looks like a number, or when it holds a space.
	{[]string{"run", "busybox", "--name=-x"}, `run {"image":"busybox","name":"-x"}`, 0},
	{[]string{"run", "busybox", "--name", "-1"}, `run {"image":"busybox","name":"-1"}`, 0},
	{[]string{"run", "busybox", "--name", "a b"}, `run {"image":"busybox","name":"a b"}`, 0},
	{[]string{"run", "busybox", "--name", "-a b"}, `run {"image":"busybox","name":"-a b"}`, 0},

	// "--" ends the options; help anywhere wins over what follows it.
	{[]string{"run", "busybox", "--", "-x"}, `podman-worker: error: unrecognized arguments: -x`, 2},
	{[]string{"run", "--", "busybox"}, `run {"image":"busybox"}`, 0},
	{[]string{"run", "--name", "n", "--", "busybox"}, `run {"image":"busybox","name":"n"}`, 0},
	{[]string{"run", "busybox", "--"}, `run {"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-h"}, `usage: podman-worker run [-h] [--name NAME] [--entrypoint ENTRYPOINT]`, 0},
	{[]string{"run", "--help"}, `usage: podman-worker run [-h] [--name NAME] [--entrypoint ENTRYPOINT]`, 0},
	{[]string{"run", "busybox", "--h"}, `usage: podman-worker run [-h] [--name NAME] [--entrypoint ENTRYPOINT]`, 0},
	{[]string{"run", "busybox", "-x"}, `podman-worker: error: unrecognized arguments: -x`, 2},
	{[]string{"run", "busybox", "-"}, `podman-worker: error: unrecognized arguments: -`, 2},
	{[]string{"run", "-", "--name", "n"}, `run {"image":"-","name":"n"}`, 0},
	{[]string{"run", "busybox", "--=x"}, `podman-worker: error: ambiguous option: --=x could match --help, --socket`, 2},
	{[]string{"run", "busybox", "--socket", "x"}, `podman-worker: error: unrecognized arguments: --socket x`, 2},
	{[]string{"run", "busybox", "-E", "x"}, `podman-worker: error: unrecognized arguments: -E x`, 2},
	{[]string{"run", "busybox", "-pp"}, `run {"image":"busybox","ports":["p"]}`, 0},
	{[]string{"ps"}, `ps {}`, 0},
	{[]string{"ps", "--all"}, `ps {"all":true}`, 0},
	{[]string{"ps", "-a"}, `ps {"all":true}`, 0},
	{[]string{"ps", "--al"}, `ps {"all":true}`, 0},
	{[]string{"kill", "mycontainer"}, `kill {"container":"mycontainer"}`, 0},
	{[]string{"kill", "mycontainer", "--signal", "SIGTERM"}, `kill {"container":"mycontainer","signal":"SIGTERM"}`, 0},
	{[]string{"kill", "-s", "SIGTERM", "c"}, `kill {"container":"c","signal":"SIGTERM"}`, 0},
	{[]string{"kill", "c", "-sTERM"}, `kill {"container":"c","signal":"TERM"}`, 0},
	{[]string{"kill", "c", "--sig=9"}, `kill {"container":"c","signal":"9"}`, 0},
	{[]string{"kill", "c", "-s"}, `podman-worker kill: error: argument --signal/-s: expected one argument`, 2},
	{[]string{"kill"}, `podman-worker kill: error: the following arguments are required: container`, 2},
	{[]string{"kill", "-h"}, `usage: podman-worker kill [-h] [--signal SIGNAL] container`, 0},
	{[]string{"rm", "mycontainer"}, `rm {"container":"mycontainer"}`, 0},
	{[]string{"rm", "mycontainer", "--force"}, `rm {"container":"mycontainer","force":true}`, 0},
	{[]string{"rm", "-f", "c"}, `rm {"container":"c","force":true}`, 0},
	{[]string{"rm", "c", "--fo"}, `rm {"container":"c","force":true}`, 0},
	{[]string{"rm", "-h"}, `usage: podman-worker rm [-h] [--force] container`, 0},
	{[]string{"rm", "c", "d"}, `podman-worker: error: unrecognized arguments: d`, 2},

	// Unknown commands (names are case-sensitive); help of each command.
	{[]string{"bogus"}, `podman-worker: error: argument command: invalid choice: 'bogus' (choose from 'version', 'ping', 'info', 'build', 'images', 'exists', 'inspect', 'rmi', 'prune', 'run', 'ps', 'kill', 'rm')`, 2},
	{[]string{"Run", "busybox"}, `podman-worker: error: argument command: invalid choice: 'Run' (choose from 'version', 'ping', 'info', 'build', 'images', 'exists', 'inspect', 'rmi', 'prune', 'run', 'ps', 'kill', 'rm')`, 2},
	{[]string{"-"}, `podman-worker: error: argument command: invalid choice: '-' (choose from 'version', 'ping', 'info', 'build', 'images', 'exists', 'inspect', 'rmi', 'prune', 'run', 'ps', 'kill', 'rm')`, 2},
	{[]string{"--=x"}, `podman-worker: error: ambiguous option: --=x could match --help, --socket`, 2},
	{[]string{"version", "extra"}, `podman-worker: error: unrecognized arguments: extra`, 2},
	{[]string{"version", "--x"}, `podman-worker: error: unrecognized arguments: --x`, 2},
	{[]string{"ping", "-h"}, `usage: podman-worker ping [-h]`, 0},
	{[]string{"version", "--", "x"}, `podman-worker: error: unrecognized arguments: -- x`, 2},
	{[]string{"prune", "-h"}, `usage: podman-worker prune [-h]`, 0},
	{[]string{"info", "-h"}, `usage: podman-worker info [-h] [--format FORMAT]`, 0},
	{[]string{"build", "-h"}, `usage: podman-worker build [-h] [--tag TAG] [--file FILE]`, 0},
	{[]string{"exists", "-h"}, `usage: podman-worker exists [-h] image`, 0},
	{[]string{"ps", "-h"}, `usage: podman-worker ps [-h] [--all]`, 0},

	// Non-ASCII values; Unicode whitespace around a number.
	{[]string{"run", "busybox", "--name", "é"}, `run {"image":"busybox","name":"é"}`, 0},
	{[]string{"run", "busybox", "--timeout", "é"}, `podman-worker run: error: argument --timeout: invalid int value: 'é'`, 2},
	{[]string{"run", "busybox", "--cpus", "\u2003 1 \u2003"}, `run {"cpus":1,"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "-e", "--x"}, `podman-worker run: error: argument --env/-e: expected one argument`, 2},
	{[]string{"run", "busybox", "-e=--x"}, `run {"env":["--x"],"image":"busybox"}`, 0},
	{[]string{"run", "busybox", "--env", "-1"}, `run {"env":["-1"],"image":"busybox"}`, 0},
}

// TestCLIUsage pins whole texts: argparse's usage, wrapped under the
// program name, before the error; and a command's help on stdout.
func TestCLIUsage(t *testing.T) {
	for _, row := range []struct {
		args           []string
		stdout, stderr string
		code           int
	}{
		{[]string{"run"}, "", `usage: podman-worker run [-h] [--name NAME] [--entrypoint ENTRYPOINT]
                         [--detach [DETACH]] [--port PORT] [--env ENV]
                         [--volume VOLUME] [--mount MOUNT]
                         [--run-command [RUN_COMMAND ...]] [--no-auto-remove]
                         [--network-mode NETWORK_MODE] [--memory MEMORY]
                         [--memory-swap MEMORY_SWAP] [--cpus CPUS]
                         [--timeout TIMEOUT] [--workdir WORKDIR]
                         [--input-file INPUT_FILE]
                         image
podman-worker run: error: the following arguments are required: image
`, 2},
		{[]string{"bogus"}, "", `usage: podman-worker [-h] [--socket SOCKET]
                     {version,ping,info,build,images,exists,inspect,rmi,prune,run,ps,kill,rm}
                     ...
podman-worker: error: argument command: invalid choice: 'bogus' (choose from 'version', 'ping', 'info', 'build', 'images', 'exists', 'inspect', 'rmi', 'prune', 'run', 'ps', 'kill', 'rm')
`, 2},
		{[]string{"kill", "c", "-s"}, "", `usage: podman-worker kill [-h] [--signal SIGNAL] container
podman-worker kill: error: argument --signal/-s: expected one argument
`, 2},
		{[]string{"images", "--help"}, `usage: podman-worker images [-h] [--all]

options:
  -h, --help  show this help message and exit
  --all, -a   Show all images
`, "", 0},
		{[]string{"kill", "-h"}, `usage: podman-worker kill [-h] [--signal SIGNAL] container

positional arguments:
  container             container name or id

options:
  -h, --help            show this help message and exit
  --signal SIGNAL, -s SIGNAL
                        Signal to send (default: SIGKILL)
`, "", 0},
		{[]string{"run", "-h"}, `usage: podman-worker run [-h] [--name NAME] [--entrypoint ENTRYPOINT]
                         [--detach [DETACH]] [--port PORT] [--env ENV]
                         [--volume VOLUME] [--mount MOUNT]
                         [--run-command [RUN_COMMAND ...]] [--no-auto-remove]
                         [--network-mode NETWORK_MODE] [--memory MEMORY]
                         [--memory-swap MEMORY_SWAP] [--cpus CPUS]
                         [--timeout TIMEOUT] [--workdir WORKDIR]
                         [--input-file INPUT_FILE]
                         image

positional arguments:
  image                 image to run

options:
  -h, --help            show this help message and exit
  --name NAME           Container name
  --entrypoint ENTRYPOINT
                        Entrypoint to run in container
  --detach [DETACH], -d [DETACH]
                        Run container in background (default: true); run waits
                        for the exit either way
  --port PORT, -p PORT  Port mapping HOST:CONTAINER (repeatable)
  --env ENV, -e ENV     Environment variable KEY=VALUE (repeatable)
  --volume VOLUME, -v VOLUME
                        Volume mapping HOST:CONTAINER (repeatable)
  --mount MOUNT, -m MOUNT
                        Mount source:target:relabel,propagation,size
                        (repeatable)
  --run-command [RUN_COMMAND ...], -c [RUN_COMMAND ...]
                        Command to run in container, under /bin/sh -c
  --no-auto-remove      Do not automatically remove container after exit
  --network-mode NETWORK_MODE
                        Network mode (default: none)
  --memory MEMORY       Memory limit (default: 20m)
  --memory-swap MEMORY_SWAP
                        Memory swap limit (default: 20m)
  --cpus CPUS           Number of CPUs (default: 0.5)
  --timeout TIMEOUT     Timeout in seconds (default: 5)
  --workdir WORKDIR, -w WORKDIR
                        Working directory inside the container
  --input-file INPUT_FILE
                        File whose bytes are the function's stdin; - reads
                        this command's own stdin
`, "", 0},
	} {
		call, stdout, stderr, code := outcome(row.args)
		if call != "" || stdout != row.stdout || stderr != row.stderr || code != row.code {
			t.Errorf("argv %q: exit %d (want %d), call %q\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s", row.args, code, row.code, call, stdout, row.stdout, stderr, row.stderr)
		}
	}
}

// FuzzCLIParse: no command line panics the parser, and each ends in help,
// argparse's refusal, a params failure, or one call whose params are a
// JSON object.
func FuzzCLIParse(f *testing.F) {
	for _, s := range []string{"run\x00img\x00-c\x00echo\x00hi", "images\x00-ah", "run\x00img\x00--mem=1", "rm\x00-fx", "run\x00-d\x00\x00img", "kill\x00c\x00-s\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		call, stdout, stderr, code := outcome(args)
		switch {
		case call != "" && code == 0:
			var m map[string]any
			_, params, _ := strings.Cut(call, " ")
			if err := json.Unmarshal([]byte(params), &m); err != nil {
				t.Errorf("argv %q: params %s: %v", args, params, err)
			}
		case call == "" && code == 0 && strings.HasPrefix(stdout, "usage: "):
		case call == "" && code == 2 && strings.HasPrefix(stderr, "usage: "):
		case call == "" && code == 1 && strings.HasPrefix(stderr, "Invalid params: "):
		default:
			t.Errorf("argv %q: exit %d, call %q\nstdout: %s\nstderr: %s", args, code, call, stdout, stderr)
		}
	})
}

// outcome parses args with Seed as the per-call CLI does and reports what
// it would do: call is "METHOD PARAMS" (keys sorted) for a line that
// calls; otherwise what argparse printed and its exit status, or the
// message and status 1 of a value no method takes.
func outcome(args []string) (call, stdout, stderr string, code int) {
	cmd, params, err := Seed.Parse(args)
	var help *HelpRequest
	var usage *UsageError
	switch {
	case err == nil:
		raw, err := json.Marshal(params)
		if err != nil {
			return "", "", err.Error(), 1
		}
		return cmd.Name + " " + string(raw), "", "", 0
	case errors.As(err, &help):
		return "", help.Text, "", 0
	case errors.As(err, &usage):
		return "", "", usage.Error(), 2
	}
	return "", "", err.Error(), 1
}
