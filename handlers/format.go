package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"

	"go.podman.io/common/pkg/report"

	"github.com/podman-worker/podman-worker/rpc"
)

// A format template comes from the caller, so rendering it is bounded in
// what it may write and in the work it may do: one template is not allowed
// to take the worker's memory or a processor from every other call.
const (
	maxFormatBytes  = 4 << 10 // the template's own text
	maxRenderBytes  = 1 << 20 // what it renders
	maxRangeNesting = 2       // range inside range at most: work is the product of the lists' lengths
	maxPad          = 4096    // widths, pads and repeats
)

var (
	errTooMuchOutput = fmt.Errorf("it renders more than %d bytes", maxRenderBytes)
	errTooWide       = fmt.Errorf("a width, precision or pad above %d is refused", maxPad)
)

// formatFuncs are podman's --format functions (json, lower, upper, join,
// split, title, truncate, pad) with the ones that take a size bounded, and
// printf bounded in its widths.
var formatFuncs = func() template.FuncMap {
	m := template.FuncMap{}
	for name, fn := range report.DefaultFuncs {
		m[name] = fn
	}
	m["pad"] = func(source string, prefix, suffix int) (string, error) {
		if prefix < 0 || suffix < 0 || prefix > maxPad || suffix > maxPad {
			return "", errTooWide
		}
		if source == "" {
			return source, nil
		}
		return strings.Repeat(" ", prefix) + source + strings.Repeat(" ", suffix), nil
	}
	m["truncate"] = func(source string, length int) (string, error) {
		if length < 0 {
			return "", errors.New("truncate: the length must not be negative")
		}
		if len(source) < length {
			return source, nil
		}
		return source[:length], nil
	}
	m["iterable"] = func(v any) (any, error) {
		// Go's templates range over an integer n as over 0..n-1: over a
		// size from the data (MemTotal) that is billions of empty steps.
		switch reflect.ValueOf(v).Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return nil, errors.New("{{range}} over a number is refused")
		}
		return v, nil
	}
	m["printf"] = func(format string, args ...any) (string, error) {
		if err := checkWidths(format, args); err != nil {
			return "", err
		}
		return fmt.Sprintf(format, args...), nil
	}
	m["json"] = func(v any) (string, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&limitedWriter{w: &buf, left: maxRenderBytes})
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(buf.String()), nil
	}
	return m
}()

// render executes a --format template over v the way podman's own
// `--format` does: text/template with podman's functions over the same Go
// field names, so "{{.Host.Arch}}" or "{{json .Store}}" mean what they
// mean to podman. Templates that define or call templates (recursion),
// nest ranges deeper than maxRangeNesting, or are longer than
// maxFormatBytes are refused before they run; rendering stops at
// maxRenderBytes.
func render(format string, v any) (string, error) {
	if len(format) > maxFormatBytes {
		return "", formatError("is %d bytes long; at most %d are taken", len(format), maxFormatBytes)
	}
	if report.IsJSON(format) {
		// podman's --format json prints the whole object as JSON.
		format = "{{json .}}"
	}
	tmpl, err := template.New("format").Funcs(formatFuncs).Parse(report.NormalizeFormat(format))
	if err != nil {
		return "", formatError("is not a valid Go template: %v", err)
	}
	if err := checkTree(tmpl); err != nil {
		return "", formatError("%v", err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&limitedWriter{w: &out, left: maxRenderBytes}, v); err != nil {
		return "", formatError("cannot be rendered: %v", err)
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

func formatError(format string, args ...any) error {
	return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"format\" "+format, args...).With("field", "format")
}

// checkTree refuses what could make rendering run without bound.
func checkTree(tmpl *template.Template) error {
	if len(tmpl.Templates()) > 1 {
		return errors.New("defines templates ({{define}} or {{block}}); only a single template is taken")
	}
	var walk func(n parse.Node, ranges int) error
	walk = func(n parse.Node, ranges int) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c, ranges); err != nil {
					return err
				}
			}
		case *parse.TemplateNode:
			return errors.New("calls a template ({{template}}); only a single template is taken")
		case *parse.RangeNode:
			if ranges+1 > maxRangeNesting {
				return fmt.Errorf("nests {{range}} more than %d deep", maxRangeNesting)
			}
			// What the range iterates over passes through iterable first.
			id := parse.NewIdentifier("iterable").SetTree(tmpl.Tree).SetPos(n.Pipe.Pos)
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pipe.Pos, Args: []parse.Node{id}})
			if err := walk(n.List, ranges+1); err != nil {
				return err
			}
			return walk(n.ElseList, ranges)
		case *parse.IfNode:
			if err := walk(n.List, ranges); err != nil {
				return err
			}
			return walk(n.ElseList, ranges)
		case *parse.WithNode:
			if err := walk(n.List, ranges); err != nil {
				return err
			}
			return walk(n.ElseList, ranges)
		}
		return nil
	}
	return walk(tmpl.Tree.Root, 0)
}

// checkWidths refuses printf verbs whose width or precision could be above
// maxPad: fmt builds the padded text in memory before writing any of it.
// With '*', which takes a width from the arguments, every int argument is
// held to it; explicit argument indexes ("%[2]d") are refused, as they
// would point '*' at any argument.
func checkWidths(format string, args []any) error {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0", format[i]) >= 0 {
			i++
		}
		for part := 0; part < 2 && i < len(format); part++ { // width, then .precision
			switch c := format[i]; {
			case c == '[':
				return errors.New("printf: explicit argument indexes are refused")
			case c == '*':
				for _, a := range args {
					if w, ok := a.(int); ok && (w > maxPad || w < -maxPad) {
						return errTooWide
					}
				}
				i++
			default:
				n := 0
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					if n = n*10 + int(format[i]-'0'); n > maxPad {
						return errTooWide
					}
				}
			}
			if part == 0 && i < len(format) && format[i] == '.' {
				i++
				continue
			}
			break
		}
		if i < len(format) && format[i] == '[' {
			return errors.New("printf: explicit argument indexes are refused")
		}
	}
	return nil
}

// limitedWriter fails once more than left bytes were written, which stops
// template execution.
type limitedWriter struct {
	w    *bytes.Buffer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		return 0, errTooMuchOutput
	}
	l.left -= len(p)
	return l.w.Write(p)
}
