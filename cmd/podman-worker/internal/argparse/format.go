package argparse

import (
	"fmt"
	"strings"
)

// Usage and help, laid out as argparse's HelpFormatter does for a stream
// that is not a terminal: 80 columns, text up to column 78.
const textWidth = 78

// usageText is argparse's format_usage: "usage: PROG [-h] ... image",
// wrapped under the program name when it is too long for one line.
func (ps *Parser) usageText(cmd *Command) string {
	prog := ps.Prog
	var optParts, posParts []string
	if cmd == nil {
		names := make([]string, len(ps.Commands))
		for i, c := range ps.Commands {
			names[i] = c.Name
		}
		optParts = []string{"[-h]"}
		for _, o := range ps.Globals {
			optParts = append(optParts, "["+invocation(o.Names[0], o)+"]")
		}
		posParts = []string{"{" + strings.Join(names, ",") + "}", "..."}
	} else {
		prog += " " + cmd.Name
		for _, o := range cmd.Options {
			optParts = append(optParts, "["+invocation(o.Names[0], o)+"]")
		}
		if cmd.Arg != "" {
			posParts = []string{cmd.Arg}
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
func invocation(name string, o Option) string {
	metavar := strings.ToUpper(strings.ReplaceAll(strings.TrimLeft(o.Names[0], "-"), "-", "_"))
	switch o.Kind {
	case KindFlag, KindFlagOff, KindHelp:
		return name
	case KindWords:
		return name + " [" + metavar + " ...]"
	case KindBool:
		return name + " [" + metavar + "]"
	}
	return name + " " + metavar
}

// helpText is argparse's format_help for a command: usage, then its
// argument and its options, each with its help.
func (ps *Parser) helpText(cmd *Command) string {
	type entry struct{ header, help string }
	var positional, options []entry
	if cmd.Arg != "" {
		positional = append(positional, entry{cmd.Arg, cmd.ArgHelp})
	}
	for _, o := range cmd.Options {
		var invs []string
		for _, n := range o.Names {
			invs = append(invs, invocation(n, o))
		}
		if o.Kind.takesNoValue() {
			invs = o.Names
		}
		options = append(options, entry{strings.Join(invs, ", "), o.Help})
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
			lines := WrapWords(e.help, helpWidth)
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
	return ps.usageText(cmd) + section("positional arguments", positional) + section("options", options)
}

// WrapWords fills text into lines of at most width characters, breaking
// at spaces (help texts here have no word longer than a line).
func WrapWords(text string, width int) []string {
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
