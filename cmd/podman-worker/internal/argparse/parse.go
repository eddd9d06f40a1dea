package argparse

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// UsageError is argparse's refusal of a command line: its usage, then
// "PROG: error: MESSAGE"; argparse printed it on stderr with exit status 2.
type UsageError struct{ text string }

func (e *UsageError) Error() string { return e.text }

// usageError refuses a line with cmd's usage (nil: the top-level parser's,
// for an unknown command or unrecognized arguments).
func (ps *Parser) usageError(cmd *Command, msg string) error {
	prog := ps.Prog
	if cmd != nil {
		prog += " " + cmd.Name
	}
	return &UsageError{text: ps.usageText(cmd) + prog + ": error: " + msg + "\n"}
}

// HelpRequest is a -h/--help: Text is what argparse printed on stdout,
// with exit status 0.
type HelpRequest struct{ Text string }

func (h *HelpRequest) Error() string { return "help requested" }

// Parser is a top-level argparse parser with one subparser a command.
type Parser struct {
	Prog     string    // the program name in usage and error lines
	Globals  []Option  // the top-level parser's own options, after -h
	Commands []Command // in the order the usage line shows them
}

// Command finds a command by its name.
func (ps *Parser) Command(name string) *Command {
	for i := range ps.Commands {
		if ps.Commands[i].Name == name {
			return &ps.Commands[i]
		}
	}
	return nil
}

// Parse reads one command line (the command and what follows it) as
// argparse did, and returns the command and its method's params. The
// error is a *HelpRequest, a *UsageError, or (after a line argparse took)
// a value no JSON method takes.
func (ps *Parser) Parse(args []string) (*Command, map[string]any, error) {
	// The top-level parser looks at every argument first, and only one
	// kind fails there: "--=..." could be any of its long options.
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--=") {
			return nil, nil, ps.usageError(nil, fmt.Sprintf("ambiguous option: %s could match %s", a, strings.Join(ps.longGlobals(), ", ")))
		}
	}
	if len(args) == 0 {
		return nil, nil, ps.usageError(nil, "the following arguments are required: command")
	}
	if len(args[0]) > 1 && args[0][0] == '-' && !negativeNumber.MatchString(args[0]) {
		// Only after the worker's own "--": argparse had no such option.
		return nil, nil, ps.usageError(nil, "unrecognized arguments: "+strings.Join(args, " "))
	}
	cmd := ps.Command(args[0])
	if cmd == nil {
		names := make([]string, len(ps.Commands))
		for i, c := range ps.Commands {
			names[i] = pyRepr(c.Name)
		}
		return nil, nil, ps.usageError(nil, fmt.Sprintf("argument command: invalid choice: %s (choose from %s)", pyRepr(args[0]), strings.Join(names, ", ")))
	}
	p := &parser{top: ps, cmd: cmd, args: args[1:], params: map[string]any{}}
	extras, err := p.parse()
	if err != nil {
		return nil, nil, err
	}
	if len(extras) > 0 {
		// The subcommand hands what it did not recognize back to the
		// top-level parser, which refuses it with its own usage.
		return nil, nil, ps.usageError(nil, "unrecognized arguments: "+strings.Join(extras, " "))
	}
	if p.paramErr != nil {
		return nil, nil, p.paramErr
	}
	return cmd, p.params, nil
}

// longGlobals are the top-level parser's long options, -h's first.
func (ps *Parser) longGlobals() []string {
	var out []string
	for _, o := range append([]Option{HelpOption}, ps.Globals...) {
		for _, n := range o.Names {
			if strings.HasPrefix(n, "--") {
				out = append(out, n)
			}
		}
	}
	return out
}

// parser is argparse's _parse_known_args (CPython 3.11) for one
// subcommand: at most one positional argument, taking one value.
type parser struct {
	top     *Parser
	cmd     *Command
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
	opt      *Option
	name     string  // the option string matched, e.g. "-e" for "-eK=V"
	explicit *string // a value given in the same argument: --name=x, -eK=V
}

func (p *parser) fail(msg string) error { return p.top.usageError(p.cmd, msg) }

// failOption is argparse's ArgumentError: the message names the option
// by all its strings, "argument --detach/-d: ...".
func (p *parser) failOption(o *Option, format string, args ...any) error {
	name := p.cmd.Arg
	if o != nil {
		name = strings.Join(o.Names, "/")
	}
	return p.fail("argument " + name + ": " + fmt.Sprintf(format, args...))
}

func (p *parser) parse() ([]string, error) {
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
	if p.cmd.Arg != "" && !p.argSeen {
		return nil, p.fail("the following arguments are required: " + p.cmd.Arg)
	}
	return extras, nil
}

// negativeNumber is argparse's _negative_number_matcher: such arguments are
// values, not options, as no option looks like a number. Python's \d is
// any decimal digit and its $ also matches before a final newline.
var negativeNumber = regexp.MustCompile(`^-\p{Nd}+\n?$|^-\p{Nd}*\.\p{Nd}+\n?$`)

// classify is argparse's _parse_optional: whether a is an option and which.
func (p *parser) classify(a string) (optionMatch, bool, error) {
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

func (p *parser) lookup(name string) *Option {
	for i := range p.cmd.Options {
		for _, n := range p.cmd.Options[i].Names {
			if n == name {
				return &p.cmd.Options[i]
			}
		}
	}
	return nil
}

// prefixMatches is argparse's _get_option_tuples: "--tim" and "--tim=5"
// match --timeout; "-eK=V" matches -e with the value "K=V".
func (p *parser) prefixMatches(a string) []optionMatch {
	var out []optionMatch
	if strings.HasPrefix(a, "--") {
		prefix, value, hasValue := strings.Cut(a, "=")
		for i := range p.cmd.Options {
			for _, n := range p.cmd.Options[i].Names {
				if strings.HasPrefix(n, prefix) {
					m := optionMatch{opt: &p.cmd.Options[i], name: n}
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
	for i := range p.cmd.Options {
		for _, n := range p.cmd.Options[i].Names {
			switch {
			case n == short:
				v := rest
				out = append(out, optionMatch{opt: &p.cmd.Options[i], name: n, explicit: &v})
			case strings.HasPrefix(n, a):
				out = append(out, optionMatch{opt: &p.cmd.Options[i], name: n})
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
func (p *parser) consumePositional(start int) int {
	if p.cmd.Arg == "" || p.argSeen {
		return start
	}
	n := len(positionalRun.Find(p.pattern[start:]))
	if n == 0 {
		return start
	}
	values := removeFirst(p.args[start:start+n], "--")
	p.params[p.cmd.Arg] = values[0]
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
func (p *parser) consumeOption(start int, extras *[]string) (int, error) {
	m := p.options[start]
	type step struct {
		opt    *Option
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
			if m.opt.Kind.takesNoValue() {
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
		switch m.opt.Kind {
		case KindFlag, KindFlagOff, KindHelp:
		case KindWords:
			for n < len(following) && following[n] == 'A' {
				n++
			}
		case KindBool:
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
func (p *parser) take(o *Option, values []string) error {
	switch o.Kind {
	case KindHelp:
		return &HelpRequest{Text: p.top.helpText(p.cmd)}
	case KindString:
		p.params[o.Param] = values[0]
	case KindAppend:
		l, _ := p.params[o.Param].([]string)
		p.params[o.Param] = append(l, values[0])
	case KindFlag, KindFlagOff:
		p.params[o.Param] = o.Kind == KindFlag
	case KindBool:
		p.params[o.Param] = len(values) == 0 || values[0] != "" // const=True, else Python's bool(str)
	case KindFloat:
		f, ok := pyFloat(values[0])
		if !ok {
			return p.failOption(o, "invalid float value: %s", pyRepr(values[0]))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			// argparse took them, so they are no usage error, but JSON
			// cannot carry them: refused as the method would refuse them,
			// once the whole line has parsed.
			p.paramErr = fmt.Errorf("Invalid params: %q: %s is not a finite number", o.Param, strconv.Quote(values[0]))
			return nil
		}
		p.params[o.Param] = json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	case KindInt:
		n, ok := pyInt(values[0])
		if !ok {
			return p.failOption(o, "invalid int value: %s", pyRepr(values[0]))
		}
		p.params[o.Param] = json.Number(n)
	case KindWords:
		if len(values) == 0 {
			// "-c" with no words, as nargs='*' allowed: the image's
			// own command runs.
			delete(p.params, o.Param)
			return nil
		}
		p.params[o.Param] = strings.Join(values, " ")
	}
	return nil
}
