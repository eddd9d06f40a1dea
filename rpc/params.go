package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// DecodeParams decodes named params into v, a pointer to a struct whose
// fields carry json tags. Every failure is an InvalidParams error that names
// the field, so a caller learns what to fix from the message alone:
//   - params must be an object (or absent, which counts as {});
//   - unknown fields are refused, so a typo such as "no-cache" for
//     "no_cache" does not silently fall back to a default;
//   - a field tagged `rpc:"required"` must be present and not empty.
func DecodeParams(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if raw[0] != '{' {
		return Errorf(KindInvalidParams, "Invalid params: params must be an object of named fields, got %s", jsonKind(raw))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return paramsError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(KindInvalidParams, "Invalid params: trailing data after the params object")
	}
	return checkRequired(v)
}

func paramsError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return Errorf(KindInvalidParams, "Invalid params: expected %s, got %s", typeName(typeErr.Type), typeErr.Value)
		}
		return Errorf(KindInvalidParams, "Invalid params: %q must be %s, got %s", field, typeName(typeErr.Type), typeErr.Value).With("field", field)
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		return Errorf(KindInvalidParams, "Invalid params: unknown field %q", field).With("field", field)
	}
	// Errors returned by a field's own UnmarshalJSON are already *Error
	// values that name their field.
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Errorf(KindInvalidParams, "Invalid params: %s", strings.TrimPrefix(msg, "json: "))
}

// checkRequired reports the first top-level field tagged `rpc:"required"` that is zero.
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
		if f.Tag.Get("rpc") != "required" || !rv.Field(i).IsZero() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		return Errorf(KindInvalidParams, "Invalid params: missing required field %q", name).With("field", name)
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

// jsonKind names the JSON type of a raw value, for messages.
func jsonKind(raw []byte) string {
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
