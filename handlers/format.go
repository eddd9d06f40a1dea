package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/podman-worker/podman-worker/fault"
	"go.podman.io/common/pkg/report"
)

// A format template comes from the caller, so rendering it is bounded in
// what it may write and in the work it may do: one template is not allowed
// to take the worker's memory or a processor from every other call.
const (
	maxFormatBytes  = 4 << 10 // the template's own text
	maxRenderBytes  = 1 << 20 // what it renders
	maxRangeNesting = 2       // range inside range at most: work is the product of the lists' lengths
	maxPad          = 4096    // widths, pads and repeats
	// The work a render may do: function calls and range iterations,
	// the bytes functions produce (json of the whole object in a loop),
	// and time. A template that passes one stops with an error; the
	// caller's context ends it the same way.
	maxRenderSteps     = 1_000_000
	maxRenderFuncBytes = 64 << 20
	maxRenderTime      = 2 * time.Second
)

var (
	errTooMuchOutput = fmt.Errorf("it renders more than %d bytes", maxRenderBytes)
	errTooWide       = fmt.Errorf("a width, precision or pad above %d is refused", maxPad)
	errTooMuchWork   = fmt.Errorf("it takes more than %d steps (range iterations and function calls) or makes more than %d bytes in functions", maxRenderSteps, maxRenderFuncBytes)
	errTooSlow       = fmt.Errorf("it takes longer than %v", maxRenderTime)
)

// budget is the work one render may still do. Every function of the
// template spends from it, range charges the length of what it iterates
// over before the first iteration, and the output writer checks it: so
// a template stops itself, and nothing keeps running after the answer.
type budget struct {
	ctx      context.Context
	steps    int
	bytes    int
	deadline time.Time
}

func (b *budget) spend(steps, bytes int) error {
	b.steps -= steps
	b.bytes -= bytes
	if b.steps < 0 || b.bytes < 0 {
		return errTooMuchWork
	}
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if time.Now().After(b.deadline) {
		return errTooSlow
	}
	return nil
}

// budgeted wraps each function of formatFuncs so that a call spends one
// step before it runs and the length of the string it answers after.
func budgeted(b *budget) template.FuncMap {
	errType := reflect.TypeFor[error]()
	m := template.FuncMap{}
	for name, fn := range formatFuncs {
		v := reflect.ValueOf(fn)
		t := v.Type()
		if t.NumOut() != 2 || t.Out(1) != errType {
			panic("format function " + name + " must answer (value, error)")
		}
		m[name] = reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
			fail := func(err error) []reflect.Value {
				return []reflect.Value{reflect.Zero(t.Out(0)), reflect.ValueOf(&err).Elem()}
			}
			if err := b.spend(1, 0); err != nil {
				return fail(err)
			}
			var out []reflect.Value
			if t.IsVariadic() {
				out = v.CallSlice(args)
			} else {
				out = v.Call(args)
			}
			if r := out[0]; r.Kind() == reflect.String {
				if err := b.spend(0, r.Len()); err != nil {
					return fail(err)
				}
			}
			if n, ok := iterLen(name, out[0]); ok {
				if err := b.spend(n, 0); err != nil {
					return fail(err)
				}
			}
			return out
		}).Interface()
	}
	return m
}

// iterLen is what a range over iterable's answer will iterate.
func iterLen(name string, v reflect.Value) (int, bool) {
	if name != "iterable" {
		return 0, false
	}
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0, true
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Chan, reflect.String:
		return v.Len(), true
	}
	return 0, true
}

// formatFuncs are podman's --format functions (json, lower, upper, join,
// split, title, truncate, pad) with the ones that take a size bounded, and
// printf bounded in its widths.
var formatFuncs = func() template.FuncMap {
	m := template.FuncMap{}
	for name, fn := range report.DefaultFuncs {
		m[name] = withError(fn)
	}
	// text/template's own functions that render any value: spent from
	// the budget like the others.
	for name, fn := range map[string]any{"print": fmt.Sprint, "println": fmt.Sprintln,
		"html": template.HTMLEscaper, "js": template.JSEscaper, "urlquery": template.URLQueryEscaper} {
		m[name] = withError(fn)
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

// withError gives fn the form (value, error) that budgeted wraps: a
// function that answers a single value answers a nil error too.
func withError(fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.NumOut() == 2 {
		return fn
	}
	ins := make([]reflect.Type, t.NumIn())
	for i := range ins {
		ins[i] = t.In(i)
	}
	errType := reflect.TypeFor[error]()
	ft := reflect.FuncOf(ins, []reflect.Type{t.Out(0), errType}, t.IsVariadic())
	return reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		return []reflect.Value{out[0], reflect.Zero(errType)}
	}).Interface()
}

// render executes a --format template over v the way podman's own
// `--format` does: text/template with podman's functions over the same Go
// field names, so "{{.Host.Arch}}" or "{{json .Store}}" mean what they
// mean to podman; a template over the keys of the JSON output instead
// ("{{.Id}}", "{{.host.arch}}", as the seed's CLI took them) is rendered
// over that JSON. Templates that define or call templates (recursion),
// nest ranges deeper than maxRangeNesting, or are longer than
// maxFormatBytes are refused before they run; rendering stops at
// maxRenderBytes.
func render(ctx context.Context, format string, v any) (string, error) {
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
	out, err := execute(ctx, tmpl, v)
	if err != nil && strings.Contains(err.Error(), "can't evaluate field") {
		// The keys the caller sees in the JSON output ("{{.Id}}",
		// "{{.host.arch}}"), which the seed's CLI took, name no Go field:
		// render over the JSON form of the same object instead.
		if view, ok := jsonView(v); ok {
			// A key missing from the JSON is an error too, not "<no value>".
			tmpl.Option("missingkey=error")
			if viewOut, viewErr := execute(ctx, tmpl, view); viewErr == nil {
				return viewOut, nil
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", formatError("cannot be rendered: %v", err)
	}
	return out, nil
}

// execute runs tmpl over v with a fresh budget.
func execute(ctx context.Context, tmpl *template.Template, v any) (string, error) {
	b := &budget{ctx: ctx, steps: maxRenderSteps, bytes: maxRenderFuncBytes, deadline: time.Now().Add(maxRenderTime)}
	tmpl.Funcs(budgeted(b))
	var out bytes.Buffer
	if err := tmpl.Execute(&limitedWriter{w: &out, left: maxRenderBytes, b: b}, v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// jsonView is v as its JSON output shows it: maps keyed by the JSON names,
// numbers as written.
func jsonView(v any) (any, bool) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var view any
	return view, dec.Decode(&view) == nil
}

func formatError(format string, args ...any) error {
	return fault.Param(fault.KindInvalidParams, "format", "\"format\" "+format, args...)
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
					if tooWide(a) {
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

// tooWide says whether a could be a '*' width or precision above maxPad:
// fmt takes one from any integer kind, not only int.
func tooWide(a any) bool {
	v := reflect.ValueOf(a)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() > maxPad || v.Int() < -maxPad
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() > maxPad
	}
	return false
}

// limitedWriter fails once more than left bytes were written, which stops
// template execution.
type limitedWriter struct {
	w    *bytes.Buffer
	left int
	b    *budget // when set, checked on every write too
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.b != nil {
		if err := l.b.spend(0, 0); err != nil {
			return 0, err
		}
	}
	if len(p) > l.left {
		return 0, errTooMuchOutput
	}
	l.left -= len(p)
	return l.w.Write(p)
}
