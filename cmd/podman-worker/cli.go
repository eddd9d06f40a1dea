package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/podman-worker/podman-worker/rpc"
)

// The drop-in replacement for the per-call CLI (podman_client.py): the same
// commands, options and outcomes, one call per process. Its callers were
// written against Python's argparse, so the command line is read the way
// argparse read it, refusals included: any unique prefix of a long option
// (--time for --timeout), --opt=value, attached short values (-eK=V),
// options anywhere among the arguments, and argparse's usage and error
// texts with exit status 2. Each command then calls the worker method of
// the same name, so both modes share one implementation, and prints the
// seed's envelope: {"success": true, "data": ...} on stdout, or
// {"success": false, "error": ..., "exit_code"?, "stdout"?, "stderr"?} on
// stderr with exit status 1.
//
// The options, as the seed's argparse defined them (long form first, as
// its document lists them); short forms the document does not show follow
// the podman CLI's own (images/ps -a, info/inspect -f, kill -s, rm/rmi -f):
//
//	command  argument    option              short  kind                  param
//	info     -           --format            -f     string                format
//	build    context     --tag               -t     string                tag
//	                     --file              -f     string                file
//	                     --build-arg                repeatable            build_args
//	                     --platform                 string                platform
//	                     --no-cache                 flag                  no_cache
//	                     --force                    flag                  force
//	images   -           --all               -a     flag                  all
//	exists   image       -
//	inspect  image       --format            -f     string                format
//	rmi      image       --force             -f     flag                  force
//	run      image       --name                     string                name
//	                     --entrypoint               string                entrypoint
//	                     --detach            -d     bool (value optional) detach
//	                     --port              -p     repeatable            ports
//	                     --env               -e     repeatable            env
//	                     --volume            -v     repeatable            volumes
//	                     --mount             -m     repeatable            mounts
//	                     --run-command       -c     words (0 or more)     command
//	                     --no-auto-remove           flag                  auto_remove=false
//	                     --network-mode             string                network_mode
//	                     --memory                   string                memory
//	                     --memory-swap              string                memory_swap
//	                     --cpus                     float                 cpus
//	                     --timeout                  int                   timeout
//	                     --workdir           -w     string                workdir
//	ps       -           --all               -a     flag                  all
//	kill     container   --signal            -s     string                signal
//	rm       container   --force             -f     flag                  force
//
// version, ping and prune take nothing; every command takes -h/--help.
// An option not given leaves its param out, so the method's default (the
// seed's: 20m, 0.5 cpus, 5 s, network none, SIGKILL) applies.

// argKind is what an option takes, named after the argparse action or type
// the seed used for it.
type argKind int

const (
	kindString argKind = iota // one value; the last one given wins
	kindAppend                // action='append': one value each time, kept in order
	kindFlag                  // action='store_true': no value
	kindBool                  // type=bool, nargs='?', const=True: a bare flag is true; a value is true unless it is empty ("False" is true)
	kindFloat                 // type=float
	kindInt                   // type=int
	kindWords                 // nargs='*': the words up to the next option, joined with spaces
	kindHelp                  // -h/--help
)

type cliOption struct {
	names []string // option strings in argparse's order: usage shows the first
	param string
	kind  argKind
	help  string
}

type cliCommand struct {
	name    string
	arg     string // the one positional argument, also its param; "" for none
	argHelp string
	options []cliOption // -h/--help comes first, as argparse adds it
}

var helpOption = cliOption{names: []string{"-h", "--help"}, kind: kindHelp, help: "show this help message and exit"}

func command(name, arg, argHelp string, options ...cliOption) cliCommand {
	return cliCommand{name: name, arg: arg, argHelp: argHelp, options: append([]cliOption{helpOption}, options...)}
}

// cliCommands are in the seed's order, which its usage line shows.
var cliCommands = []cliCommand{
	command("version", "", ""),
	command("ping", "", ""),
	command("info", "", "",
		cliOption{[]string{"--format", "-f"}, "format", kindString, "Go template, e.g. {{.Host.Arch}}"}),
	command("build", "context", "build context directory",
		cliOption{[]string{"--tag", "-t"}, "tag", kindString, "Image tag (e.g., myapp:latest)"},
		cliOption{[]string{"--file", "-f"}, "file", kindString, "Dockerfile name (default: Dockerfile)"},
		cliOption{[]string{"--build-arg"}, "build_args", kindAppend, "Build argument KEY=VALUE (repeatable)"},
		cliOption{[]string{"--platform"}, "platform", kindString, "Target platform (e.g., linux/amd64)"},
		cliOption{[]string{"--no-cache"}, "no_cache", kindFlag, "Do not use cache when building"},
		cliOption{[]string{"--force"}, "force", kindFlag, "Force rebuild even if image exists"}),
	command("images", "", "",
		cliOption{[]string{"--all", "-a"}, "all", kindFlag, "Show all images"}),
	command("exists", "image", "image name or id"),
	command("inspect", "image", "image name or id",
		cliOption{[]string{"--format", "-f"}, "format", kindString, "Go template, e.g. {{.Size}}"}),
	command("rmi", "image", "image name or id",
		cliOption{[]string{"--force", "-f"}, "force", kindFlag, "Remove even if containers use it"}),
	command("prune", "", ""),
	command("run", "image", "image to run",
		cliOption{[]string{"--name"}, "name", kindString, "Container name"},
		cliOption{[]string{"--entrypoint"}, "entrypoint", kindString, "Entrypoint to run in container"},
		cliOption{[]string{"--detach", "-d"}, "detach", kindBool, "Run container in background (default: true); run waits for the exit either way"},
		cliOption{[]string{"--port", "-p"}, "ports", kindAppend, "Port mapping HOST:CONTAINER (repeatable)"},
		cliOption{[]string{"--env", "-e"}, "env", kindAppend, "Environment variable KEY=VALUE (repeatable)"},
		cliOption{[]string{"--volume", "-v"}, "volumes", kindAppend, "Volume mapping HOST:CONTAINER (repeatable)"},
		cliOption{[]string{"--mount", "-m"}, "mounts", kindAppend, "Mount source:target:relabel,propagation,size (repeatable)"},
		cliOption{[]string{"--run-command", "-c"}, "command", kindWords, "Command to run in container, under /bin/sh -c"},
		cliOption{[]string{"--no-auto-remove"}, "auto_remove", kindFlag, "Do not automatically remove container after exit"},
		cliOption{[]string{"--network-mode"}, "network_mode", kindString, "Network mode (default: none)"},
		cliOption{[]string{"--memory"}, "memory", kindString, "Memory limit (default: 20m)"},
		cliOption{[]string{"--memory-swap"}, "memory_swap", kindString, "Memory swap limit (default: 20m)"},
		cliOption{[]string{"--cpus"}, "cpus", kindFloat, "Number of CPUs (default: 0.5)"},
		cliOption{[]string{"--timeout"}, "timeout", kindInt, "Timeout in seconds (default: 5)"},
		cliOption{[]string{"--workdir", "-w"}, "workdir", kindString, "Working directory inside the container"},
		cliOption{[]string{"--input-file"}, "input_file", kindString, "File whose bytes are the function's stdin; - reads this command's own stdin"}),
	command("ps", "", "",
		cliOption{[]string{"--all", "-a"}, "all", kindFlag, "Show stopped containers too"}),
	command("kill", "container", "container name or id",
		cliOption{[]string{"--signal", "-s"}, "signal", kindString, "Signal to send (default: SIGKILL)"}),
	command("rm", "container", "container name or id",
		cliOption{[]string{"--force", "-f"}, "force", kindFlag, "Remove even if running"}),
}

// cliProg is the program name in usage and error lines, where the seed
// printed podman_client.py.
const cliProg = "podman-worker"

// runCLI runs one command of the per-call CLI through call and prints its
// outcome. The exit status is 0 on success (and for --help), 1 when the
// call failed, 2 when the command line was refused, as argparse did.
func runCLI(ctx context.Context, call func(ctx context.Context, method string, params json.RawMessage) (any, error), args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, params, err := parseCLI(args)
	if err != nil {
		return cliParseOutcome(err, stdout, stderr)
	}
	if path, ok := params["input_file"].(string); ok {
		// The function's input: a file's bytes, or this command's own
		// stdin for "-", sent exact (base64) and bounded by the worker.
		delete(params, "input_file")
		data, err := readInput(path, stdin)
		if err != nil {
			return cliPrint(stderr, failure{Error: err.Error()}, 1)
		}
		params["input"], params["input_encoding"] = base64.StdEncoding.EncodeToString(data), "base64"
	}
	if c, ok := params["context"].(string); ok && cmd.name == "build" && c != "" && !filepath.IsAbs(c) {
		// The CLI's caller means its own working directory, as podman
		// build does; the protocol takes relative contexts as relative to
		// the first build root instead.
		if abs, err := filepath.Abs(c); err == nil {
			params["context"] = abs
		}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return cliPrint(stderr, failure{Error: err.Error()}, 1)
	}
	data, err := call(ctx, cmd.name, raw)
	if err != nil {
		e := rpc.AsError(err)
		// A function that exited non-zero: its exit code and output are
		// what the caller needs to see why.
		return cliPrint(stderr, failure{Error: e.Message, ExitCode: e.Fields["exit_code"], Stdout: e.Fields["stdout"], Stderr: e.Fields["stderr"]}, 1)
	}
	if exists, ok := data.(bool); ok && cmd.name == "exists" && !exists {
		// Callers test "success": the seed answered a missing image as a
		// failure, where the JSON-RPC method answers false.
		return cliPrint(stderr, failure{Error: "Image does not exist"}, 1)
	}
	return cliPrint(stdout, success{Success: true, Data: data}, 0)
}

// maxCLIInput bounds what the CLI reads for --input-file; the worker's own
// --max-input-bytes then decides.
const maxCLIInput = 1 << 30

// readInput reads --input-file's bytes.
func readInput(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		if stdin == nil {
			return nil, fmt.Errorf("--input-file -: this command has no stdin")
		}
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--input-file: %v", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxCLIInput+1))
	if err != nil {
		return nil, fmt.Errorf("--input-file: %v", err)
	}
	if len(data) > maxCLIInput {
		return nil, fmt.Errorf("--input-file: more than 1 GiB")
	}
	return data, nil
}

// cliRefusal answers a command line that needs no call (help, a usage
// error, a value no method takes) before the worker connects to Podman,
// as the seed's argparse did: done is false when the line is a call.
func cliRefusal(args []string, stdout, stderr io.Writer) (code int, done bool) {
	if _, _, err := parseCLI(args); err != nil {
		return cliParseOutcome(err, stdout, stderr), true
	}
	return 0, false
}

// cliParseOutcome prints what parseCLI refused and returns the exit status.
func cliParseOutcome(err error, stdout, stderr io.Writer) int {
	var help *cliHelp
	var usage *usageError
	switch {
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.text) // argparse prints help on stdout
		return 0
	case errors.As(err, &usage):
		fmt.Fprint(stderr, usage.Error())
		return 2
	}
	return cliPrint(stderr, failure{Error: err.Error()}, 1)
}

// The envelopes, with the seed's key order.
type success struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

type failure struct {
	Success  bool   `json:"success"`
	Error    string `json:"error"`
	ExitCode any    `json:"exit_code,omitempty"`
	Stdout   any    `json:"stdout,omitempty"`
	Stderr   any    `json:"stderr,omitempty"`
}

func cliPrint(w io.Writer, v any, code int) int {
	b, err := rpc.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(failure{Error: err.Error()})
		code = 1
	}
	fmt.Fprintln(w, string(b))
	return code
}

// expandSocketPrefix turns the seed's abbreviations of its one global
// option, --sock and the like (argparse took any prefix of --socket), into
// --socket for the worker's flag parser, which takes whole names only. It
// looks at the worker flags alone: those before the command.
func expandSocketPrefix(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" || findCommand(a) != nil {
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		if p := strings.TrimPrefix(name, "--"); p != name && p != "" && p != "socket" && strings.HasPrefix("socket", p) {
			out[i] = "--socket"
			if hasValue {
				out[i] += "=" + value
			}
		}
	}
	return out
}

func findCommand(name string) *cliCommand {
	for i := range cliCommands {
		if cliCommands[i].name == name {
			return &cliCommands[i]
		}
	}
	return nil
}

// usageError is argparse's refusal of a command line: its usage, then
// "PROG: error: MESSAGE", on stderr with exit status 2.
type usageError struct {
	cmd *cliCommand // nil: the top-level parser (unknown command, unrecognized arguments)
	msg string
}

func (e *usageError) Error() string {
	prog := cliProg
	if e.cmd != nil {
		prog += " " + e.cmd.name
	}
	return usageText(e.cmd) + prog + ": error: " + e.msg + "\n"
}

// cliHelp is a -h/--help: the text to print on stdout, exit status 0.
type cliHelp struct{ text string }

func (h *cliHelp) Error() string { return "help requested" }

// parseCLI reads one command line (the command and what follows it) as
// the seed's argparse parser did, and returns the command and its
// method's params.
func parseCLI(args []string) (*cliCommand, map[string]any, error) {
	// The seed's top-level parser looked at every argument first, and
	// only one kind fails there: "--=..." could be its --help or --socket.
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--=") {
			return nil, nil, &usageError{msg: fmt.Sprintf("ambiguous option: %s could match --help, --socket", a)}
		}
	}
	if len(args) == 0 {
		return nil, nil, &usageError{msg: "the following arguments are required: command"}
	}
	if len(args[0]) > 1 && args[0][0] == '-' && !negativeNumber.MatchString(args[0]) {
		// Only after the worker's own "--": argparse had no such option.
		return nil, nil, &usageError{msg: "unrecognized arguments: " + strings.Join(args, " ")}
	}
	cmd := findCommand(args[0])
	if cmd == nil {
		names := make([]string, len(cliCommands))
		for i, c := range cliCommands {
			names[i] = pyRepr(c.name)
		}
		return nil, nil, &usageError{msg: fmt.Sprintf("argument command: invalid choice: %s (choose from %s)", pyRepr(args[0]), strings.Join(names, ", "))}
	}
	p := &cliParser{cmd: cmd, args: args[1:], params: map[string]any{}}
	extras, err := p.parse()
	if err != nil {
		return nil, nil, err
	}
	if len(extras) > 0 {
		// The subcommand hands what it did not recognize back to the
		// top-level parser, which refuses it with its own usage.
		return nil, nil, &usageError{msg: "unrecognized arguments: " + strings.Join(extras, " ")}
	}
	if p.paramErr != nil {
		return nil, nil, p.paramErr
	}
	return cmd, p.params, nil
}

// cliParser is argparse's _parse_known_args (CPython 3.11) for one
// subcommand: at most one positional argument, taking one value.
type cliParser struct {
	cmd     *cliCommand
	args    []string
	pattern []byte // per argument: 'O' an option, 'A' an argument, '-' the "--"
	options map[int]optionMatch
	params  map[string]any
	argSeen bool
	// paramErr is a value argparse took that no method takes (--cpus inf):
	// reported after the line parsed, where the seed failed on it.
	paramErr error
}

// optionMatch is what an option-like argument resolved to: opt is nil when
// no option matches (argparse then counts the argument as unrecognized).
type optionMatch struct {
	opt      *cliOption
	name     string  // the option string matched, e.g. "-e" for "-eK=V"
	explicit *string // a value given in the same argument: --name=x, -eK=V
}

func (p *cliParser) fail(msg string) error { return &usageError{cmd: p.cmd, msg: msg} }

// failOption is argparse's ArgumentError: the message names the option
// by all its strings, "argument --detach/-d: ...".
func (p *cliParser) failOption(o *cliOption, format string, args ...any) error {
	name := p.cmd.arg
	if o != nil {
		name = strings.Join(o.names, "/")
	}
	return p.fail("argument " + name + ": " + fmt.Sprintf(format, args...))
}

func (p *cliParser) parse() ([]string, error) {
	p.options = map[int]optionMatch{}
	maxOption := -1
	for i, a := range p.args {
		if a == "--" {
			// Everything after "--" is an argument.
			p.pattern = append(p.pattern, '-')
			for range p.args[i+1:] {
				p.pattern = append(p.pattern, 'A')
			}
			break
		}
		m, isOption, err := p.classify(a)
		if err != nil {
			return nil, err
		}
		if !isOption {
			p.pattern = append(p.pattern, 'A')
			continue
		}
		p.options[i] = m
		p.pattern = append(p.pattern, 'O')
		maxOption = i
	}

	// Positional arguments and options alternately, as argparse consumes them.
	var extras []string
	start := 0
	for start <= maxOption {
		next := start
		for ; next <= maxOption; next++ {
			if _, ok := p.options[next]; ok {
				break
			}
		}
		if start != next {
			end := p.consumePositional(start)
			if end > start {
				start = end
				continue
			}
		}
		if _, ok := p.options[start]; !ok {
			extras = append(extras, p.args[start:next]...)
			start = next
		}
		var err error
		if start, err = p.consumeOption(start, &extras); err != nil {
			return nil, err
		}
	}
	stop := p.consumePositional(start)
	extras = append(extras, p.args[stop:]...)
	if p.cmd.arg != "" && !p.argSeen {
		return nil, p.fail("the following arguments are required: " + p.cmd.arg)
	}
	return extras, nil
}

// negativeNumber is argparse's _negative_number_matcher: such arguments are
// values, not options, as no option looks like a number. Python's \d is
// any decimal digit and its $ also matches before a final newline.
var negativeNumber = regexp.MustCompile(`^-\p{Nd}+\n?$|^-\p{Nd}*\.\p{Nd}+\n?$`)

// classify is argparse's _parse_optional: whether a is an option and which.
func (p *cliParser) classify(a string) (optionMatch, bool, error) {
	if a == "" || a[0] != '-' {
		return optionMatch{}, false, nil
	}
	if o := p.lookup(a); o != nil {
		return optionMatch{opt: o, name: a}, true, nil
	}
	if len(a) == 1 {
		return optionMatch{}, false, nil
	}
	if name, value, ok := strings.Cut(a, "="); ok {
		if o := p.lookup(name); o != nil {
			return optionMatch{opt: o, name: name, explicit: &value}, true, nil
		}
	}
	matches := p.prefixMatches(a)
	if len(matches) > 1 {
		names := make([]string, len(matches))
		for i, m := range matches {
			names[i] = m.name
		}
		return optionMatch{}, false, p.fail(fmt.Sprintf("ambiguous option: %s could match %s", a, strings.Join(names, ", ")))
	}
	if len(matches) == 1 {
		return matches[0], true, nil
	}
	if negativeNumber.MatchString(a) || strings.Contains(a, " ") {
		return optionMatch{}, false, nil
	}
	return optionMatch{name: a}, true, nil // an option this command does not have
}

func (p *cliParser) lookup(name string) *cliOption {
	for i := range p.cmd.options {
		for _, n := range p.cmd.options[i].names {
			if n == name {
				return &p.cmd.options[i]
			}
		}
	}
	return nil
}

// prefixMatches is argparse's _get_option_tuples: "--tim" and "--tim=5"
// match --timeout; "-eK=V" matches -e with the value "K=V".
func (p *cliParser) prefixMatches(a string) []optionMatch {
	var out []optionMatch
	if strings.HasPrefix(a, "--") {
		prefix, value, hasValue := strings.Cut(a, "=")
		for i := range p.cmd.options {
			for _, n := range p.cmd.options[i].names {
				if strings.HasPrefix(n, prefix) {
					m := optionMatch{opt: &p.cmd.options[i], name: n}
					if hasValue {
						v := value
						m.explicit = &v
					}
					out = append(out, m)
				}
			}
		}
		return out
	}
	short, rest := a[:2], a[2:]
	for i := range p.cmd.options {
		for _, n := range p.cmd.options[i].names {
			switch {
			case n == short:
				v := rest
				out = append(out, optionMatch{opt: &p.cmd.options[i], name: n, explicit: &v})
			case strings.HasPrefix(n, a):
				out = append(out, optionMatch{opt: &p.cmd.options[i], name: n})
			}
		}
	}
	return out
}

// positionalRun matches argparse's pattern for one positional value,
// "--" markers around it included.
var positionalRun = regexp.MustCompile(`^-*A-*`)

// consumePositional takes the command's argument at start if it is still
// missing and one stands there; it returns where the next one begins.
func (p *cliParser) consumePositional(start int) int {
	if p.cmd.arg == "" || p.argSeen {
		return start
	}
	n := len(positionalRun.Find(p.pattern[start:]))
	if n == 0 {
		return start
	}
	values := removeFirst(p.args[start:start+n], "--")
	p.params[p.cmd.arg] = values[0]
	p.argSeen = true
	return start + n
}

func removeFirst(list []string, s string) []string {
	out := make([]string, 0, len(list))
	removed := false
	for _, v := range list {
		if v == s && !removed {
			removed = true
			continue
		}
		out = append(out, v)
	}
	return out
}

// consumeOption is argparse's consume_optional: the option at start, its
// values, and any flags combined after it in one argument (-fh).
func (p *cliParser) consumeOption(start int, extras *[]string) (int, error) {
	m := p.options[start]
	type step struct {
		opt    *cliOption
		values []string
	}
	var steps []step
	stop := start + 1
	for {
		if m.opt == nil {
			*extras = append(*extras, p.args[start])
			return start + 1, nil
		}
		if m.explicit != nil {
			takes := 1
			if m.opt.kind == kindFlag || m.opt.kind == kindHelp {
				takes = 0
			}
			explicit := *m.explicit
			switch {
			case takes == 0 && m.name[1] != '-' && explicit != "":
				// -fh: a flag, then more single-dash options.
				steps = append(steps, step{m.opt, nil})
				r, size := utf8.DecodeRuneInString(explicit)
				name := "-" + string(r)
				if r == utf8.RuneError && size == 1 {
					name = "-" + explicit[:1]
				}
				next := p.lookup(name)
				if next == nil {
					return 0, p.failOption(m.opt, "ignored explicit argument %s", pyRepr(explicit))
				}
				m = optionMatch{opt: next, name: name}
				if rest := explicit[size:]; rest != "" {
					m.explicit = &rest
				}
				continue
			case takes == 1:
				steps = append(steps, step{m.opt, []string{explicit}})
			default:
				return 0, p.failOption(m.opt, "ignored explicit argument %s", pyRepr(explicit))
			}
			break
		}
		// Values from the arguments that follow.
		following := p.pattern[start+1:]
		n := 0
		switch m.opt.kind {
		case kindFlag, kindHelp:
		case kindWords:
			for n < len(following) && following[n] == 'A' {
				n++
			}
		case kindBool:
			// nargs='?': the next argument when one stands there. The seed's
			// document lists --detach/-d with no value, as callers use it.
			if len(following) > 0 && following[0] == 'A' {
				n = 1
			}
		default:
			if len(following) == 0 || following[0] != 'A' {
				return 0, p.failOption(m.opt, "expected one argument")
			}
			n = 1
		}
		stop = start + 1 + n
		steps = append(steps, step{m.opt, p.args[start+1 : stop]})
		break
	}
	for _, s := range steps {
		if err := p.take(s.opt, s.values); err != nil {
			return 0, err
		}
	}
	return stop, nil
}

// take stores an option's values in the params, converting them as the
// seed's argparse types did.
func (p *cliParser) take(o *cliOption, values []string) error {
	switch o.kind {
	case kindHelp:
		return &cliHelp{text: helpText(p.cmd)}
	case kindString:
		p.params[o.param] = values[0]
	case kindAppend:
		l, _ := p.params[o.param].([]string)
		p.params[o.param] = append(l, values[0])
	case kindFlag:
		// --no-auto-remove is the one flag that turns its param off.
		p.params[o.param] = o.param != "auto_remove"
	case kindBool:
		p.params[o.param] = len(values) == 0 || values[0] != "" // const=True, else Python's bool(str)
	case kindFloat:
		f, ok := pyFloat(values[0])
		if !ok {
			return p.failOption(o, "invalid float value: %s", pyRepr(values[0]))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			// argparse took them, so they are no usage error, but JSON
			// cannot carry them: refused as the method would refuse them,
			// once the whole line has parsed.
			p.paramErr = fmt.Errorf("Invalid params: %q: %s is not a finite number", o.param, strconv.Quote(values[0]))
			return nil
		}
		p.params[o.param] = json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	case kindInt:
		n, ok := pyInt(values[0])
		if !ok {
			return p.failOption(o, "invalid int value: %s", pyRepr(values[0]))
		}
		p.params[o.param] = json.Number(n)
	case kindWords:
		if len(values) == 0 {
			// "-c" with no words, as nargs='*' allowed: the image's
			// own command runs.
			delete(p.params, o.param)
			return nil
		}
		p.params[o.param] = strings.Join(values, " ")
	}
	return nil
}

// pyText is how Python's int() and float() see their argument: surrounding
// whitespace stripped, any decimal digit read as its ASCII digit.
func pyText(s string) (string, bool) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return "", false // not UTF-8: Python's surrogate escapes are no digits
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case unicode.IsDigit(r):
			// Decimal digits come in runs of ten, each from 0 to 9.
			zero := r
			for unicode.IsDigit(zero - 1) {
				zero--
			}
			b.WriteByte(byte('0' + (r-zero)%10))
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimFunc(b.String(), func(r rune) bool {
		return r == ' ' || (r >= '\t' && r <= '\r') || (r >= 0x1c && r <= 0x1f)
	}), true
}

var (
	pyDigits   = `[0-9](?:_?[0-9])*`
	pyIntText  = regexp.MustCompile(`^[+-]?` + pyDigits + `$`)
	pyFloatNum = regexp.MustCompile(`^[+-]?(?:` + pyDigits + `(?:\.(?:` + pyDigits + `)?)?|\.` + pyDigits + `)(?:[eE][+-]?` + pyDigits + `)?$`)
	pyFloatInf = regexp.MustCompile(`(?i)^[+-]?(?:inf|infinity|nan)$`)
)

// pyFloat is Python's float(str): "1e3", " 0.5 ", "1_000", "inf".
func pyFloat(s string) (float64, bool) {
	t, ok := pyText(s)
	if !ok {
		return 0, false
	}
	switch {
	case pyFloatInf.MatchString(t):
		f, _ := strconv.ParseFloat(strings.ToLower(t), 64)
		if strings.Contains(strings.ToLower(t), "nan") {
			f = math.NaN()
		}
		return f, true
	case pyFloatNum.MatchString(t):
		f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
		return f, true // out of range is ±inf, as in Python
	}
	return 0, false
}

// pyInt is Python's int(str): "7", " +7 ", "007", "1_000"; the result in
// JSON's form.
func pyInt(s string) (string, bool) {
	t, ok := pyText(s)
	if !ok || !pyIntText.MatchString(t) {
		return "", false
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(strings.TrimPrefix(t, "+"), "_", ""), 10)
	if !ok {
		return "", false
	}
	return n.String(), true
}

// pyRepr is Python's repr of a str, as argparse's messages quote values:
// 'x', or "it's" when the value holds a single quote and no double one.
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// Python reads a byte that is not UTF-8 as a surrogate escape.
			fmt.Fprintf(&b, `\udc%02x`, s[i])
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	b.WriteByte(quote)
	return b.String()
}

// Usage and help, laid out as argparse's HelpFormatter does for a stream
// that is not a terminal: 80 columns, text up to column 78.
const textWidth = 78

// usageText is argparse's format_usage: "usage: PROG [-h] ... image",
// wrapped under the program name when it is too long for one line.
func usageText(cmd *cliCommand) string {
	prog := cliProg
	var optParts, posParts []string
	if cmd == nil {
		names := make([]string, len(cliCommands))
		for i, c := range cliCommands {
			names[i] = c.name
		}
		optParts = []string{"[-h]", "[--socket SOCKET]"}
		posParts = []string{"{" + strings.Join(names, ",") + "}", "..."}
	} else {
		prog += " " + cmd.name
		for _, o := range cmd.options {
			optParts = append(optParts, "["+invocation(o.names[0], o)+"]")
		}
		if cmd.arg != "" {
			posParts = []string{cmd.arg}
		}
	}
	const prefix = "usage: "
	all := append(append([]string{prog}, optParts...), posParts...)
	if usage := strings.Join(all, " "); len(prefix)+len(usage) <= textWidth {
		return prefix + usage + "\n"
	}
	indent := strings.Repeat(" ", len(prefix)+len(prog)+1)
	lines := wrapParts(append([]string{prog}, optParts...), indent, prefix)
	lines = append(lines, wrapParts(posParts, indent, "")...)
	return prefix + strings.Join(lines, "\n") + "\n"
}

// wrapParts is get_lines inside argparse's _format_usage.
func wrapParts(parts []string, indent, prefix string) []string {
	var lines, line []string
	lineLen := len(indent) - 1
	if prefix != "" {
		lineLen = len(prefix) - 1
	}
	for _, part := range parts {
		if lineLen+1+len(part) > textWidth && len(line) > 0 {
			lines = append(lines, indent+strings.Join(line, " "))
			line = nil
			lineLen = len(indent) - 1
		}
		line = append(line, part)
		lineLen += len(part) + 1
	}
	if len(line) > 0 {
		lines = append(lines, indent+strings.Join(line, " "))
	}
	if prefix != "" && len(lines) > 0 {
		lines[0] = lines[0][len(indent):]
	}
	return lines
}

// invocation is one way to write an option with its metavar:
// "--name NAME", "--run-command [RUN_COMMAND ...]", "--all".
func invocation(name string, o cliOption) string {
	metavar := strings.ToUpper(strings.ReplaceAll(strings.TrimLeft(o.names[0], "-"), "-", "_"))
	switch o.kind {
	case kindFlag, kindHelp:
		return name
	case kindWords:
		return name + " [" + metavar + " ...]"
	case kindBool:
		return name + " [" + metavar + "]"
	}
	return name + " " + metavar
}

// helpText is argparse's format_help for a command: usage, then its
// argument and its options, each with its help.
func helpText(cmd *cliCommand) string {
	type entry struct{ header, help string }
	var positional, options []entry
	if cmd.arg != "" {
		positional = append(positional, entry{cmd.arg, cmd.argHelp})
	}
	for _, o := range cmd.options {
		var invs []string
		for _, n := range o.names {
			invs = append(invs, invocation(n, o))
		}
		if o.kind == kindFlag || o.kind == kindHelp {
			invs = o.names
		}
		options = append(options, entry{strings.Join(invs, ", "), o.help})
	}
	longest := 0
	for _, e := range append(append([]entry{}, positional...), options...) {
		longest = max(longest, len(e.header)+2)
	}
	helpPos := min(longest+2, 24)
	helpWidth := max(textWidth-helpPos, 11)
	section := func(title string, entries []entry) string {
		if len(entries) == 0 {
			return ""
		}
		var b strings.Builder
		b.WriteString("\n" + title + ":\n")
		for _, e := range entries {
			lines := wrapWords(e.help, helpWidth)
			switch {
			case len(lines) == 0:
				b.WriteString("  " + e.header + "\n")
				continue
			case len(e.header) <= helpPos-4:
				fmt.Fprintf(&b, "  %-*s  %s\n", helpPos-4, e.header, lines[0])
			default:
				fmt.Fprintf(&b, "  %s\n%*s%s\n", e.header, helpPos, "", lines[0])
			}
			for _, l := range lines[1:] {
				fmt.Fprintf(&b, "%*s%s\n", helpPos, "", l)
			}
		}
		return b.String()
	}
	return usageText(cmd) + section("positional arguments", positional) + section("options", options)
}

// wrapWords fills text into lines of at most width characters, breaking
// at spaces (help texts here have no word longer than a line).
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
