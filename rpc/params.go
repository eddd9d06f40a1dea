package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/podman-worker/podman-worker/fault"
)

// DecodeParams decodes named params into v, a pointer to a struct whose
// fields carry json tags. Every failure is an InvalidParams error that names
// the field, so a caller learns what to fix from the message alone:
//   - params must be an object (or absent, which counts as {});
//   - unknown fields are refused, so a typo such as "no-cache" for
//     "no_cache" does not silently fall back to a default;
//   - each field is decoded on its own, so even a field type with its own
//     UnmarshalJSON (KEY=VALUE lists, sizes) is named in its error;
//   - a field tagged `rpc:"required"` must be present and not empty.
//
// shared are pointers to structs of params that several methods accept
// besides their own (the same rules apply to them): each field goes to v if
// v has it, else to the first of shared that has it, else it is unknown.
func DecodeParams(raw json.RawMessage, v any, shared ...any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return fault.Errorf(fault.KindInvalidParams, "Invalid params: params must be an object of named fields, got %s", JSONKind(raw))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fault.Errorf(fault.KindInvalidParams, "Invalid params: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	targets := append([]any{v}, shared...)
	values := make([]reflect.Value, len(targets))
	byName := make([]map[string][]int, len(targets))
	for i, t := range targets {
		values[i] = reflect.ValueOf(t).Elem()
		byName[i] = fieldsByName(values[i].Type())
	}
	for name, value := range fields {
		field, ok := reflect.Value{}, false
		var sf reflect.StructField
		for i := range targets {
			if index, found := byName[i][name]; found {
				field, ok = values[i].FieldByIndex(index), true
				sf = values[i].Type().FieldByIndex(index)
				break
			}
		}
		if !ok {
			return fault.Param(fault.KindInvalidParams, name, "unknown field %q", name)
		}
		if err := json.Unmarshal(value, field.Addr().Interface()); err != nil {
			return fieldError(name, sf, value, err)
		}
	}
	for _, t := range targets {
		if err := checkRequired(t); err != nil {
			return err
		}
	}
	return nil
}

// fieldsByName maps json names to the index paths of a params struct's
// fields. Embedded structs without a json name are flattened, as
// encoding/json does, so shared groups of params (limits) can be embedded.
func fieldsByName(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, idx := range fieldsByName(f.Type) {
				out[n] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = []int{i}
	}
	return out
}

// numberType is json.Number, which params use for numbers they check
// themselves (cpus, timeout): its kind is string, but it takes numbers.
var numberType = reflect.TypeFor[json.Number]()

// fieldError says which field was of the wrong type and what it must be:
// the field's `want` tag ("a number of seconds") when it has one.
func fieldError(field string, sf reflect.StructField, value json.RawMessage, err error) error {
	var typeErr *json.UnmarshalTypeError
	numberRefused := sf.Type == numberType && strings.Contains(err.Error(), "into Number") // "abc" for a json.Number
	if errors.As(err, &typeErr) || numberRefused {
		want := sf.Tag.Get("want")
		switch {
		case want != "":
		case sf.Type == numberType:
			want = "a number"
		case typeErr != nil:
			want = typeName(typeErr.Type)
		}
		got := JSONKind(value)
		if value = bytes.TrimSpace(value); len(value) > 0 && value[0] == '"' && len(value) <= 40 {
			got = string(value) // a short string shows itself: got "abc"
		}
		return fault.Param(fault.KindInvalidParams, field, "%q must be %s, got %s", field, want, got)
	}
	msg := err.Error()
	var e *fault.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "Invalid params: "), "json: ")
	return fault.Invalid(field, "%s", msg)
}

// checkRequired reports the first field tagged `rpc:"required"` that is
// zero, among the top-level fields and those of embedded structs.
func checkRequired(v any) error {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
			// Embedded groups of params are params of their own, as in
			// decoding: their required fields are checked too.
			if err := checkRequired(rv.Field(i).Addr().Interface()); err != nil {
				return err
			}
			continue
		}
		if f.Tag.Get("rpc") != "required" || !rv.Field(i).IsZero() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		return fault.Param(fault.KindInvalidParams, name, "missing required field %q", name)
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return fmt.Sprintf("a %s", t)
	}
}

// JSONKind names the JSON type of a raw value, for messages: "an object",
// "an array", "a string", "a boolean", "null", "a number", or "nothing".
func JSONKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// Member returns the value of the top-level member name of params, a JSON
// object, as the exact bytes sent; nil when params is not an object or has
// no such member. It finds the member without decoding, or validating, the
// other ones, so it stays cheap on params that carry megabytes (add_file's
// content): params are expected to be valid JSON, as every method's are
// (the stream validates each line); on bytes that are not, it answers nil
// or a wrong value, never more.
func Member(params json.RawMessage, name string) (value json.RawMessage) {
	defer func() {
		if recover() != nil { // the scanner ran off the end of invalid JSON
			value = nil
		}
	}()
	obj := bytes.TrimSpace(params)
	if len(obj) < 2 || obj[0] != '{' {
		return nil
	}
	i := skipSpace(obj, 1)
	for obj[i] != '}' {
		keyEnd := skipString(obj, i)
		start := skipSpace(obj, skipSpace(obj, keyEnd)+1) // past the ':'
		end := skipValue(obj, start)
		if stringValue(obj[i:keyEnd]) == name {
			return obj[start:end]
		}
		i = skipSpace(obj, end)
		if obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}
