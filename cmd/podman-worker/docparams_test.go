package main

import (
	"reflect"
	"strings"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/handlers"
)

// methodParams returns, for every method the worker serves, the JSON names
// of its params in the order of its params struct's fields (nil for a method
// that takes none), read from the registry and the structs themselves, so
// TestProtocolDoc holds protocol.md to the code and not to a copy of it.
func methodParams() map[string][]string {
	a := &app{svc: handlers.New(nil, zerolog.Nop(), handlers.Options{})}
	out := map[string][]string{}
	for name, params := range a.methodParams() {
		out[name] = jsonNames(reflect.TypeOf(params).Elem())
	}
	return out
}

// commonParams returns, for every method that takes them, the params it
// accepts besides its own (handlers.CommonParams): the methods of the
// handlers' registry, not the worker's own.
func commonParams() map[string][]string {
	a := &app{svc: handlers.New(nil, zerolog.Nop(), handlers.Options{})}
	names := jsonNames(reflect.TypeOf(handlers.CommonParams{}))
	out := map[string][]string{}
	for name := range a.svc.Params() {
		out[name] = names
	}
	return out
}

// jsonNames lists a struct's json field names as rpc.DecodeParams reads
// them: embedded structs without a name of their own are flattened.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, jsonNames(f.Type)...)
		case name == "-" || !f.IsExported():
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}
