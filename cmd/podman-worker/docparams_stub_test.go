package main

// methodParams returns, for every method the worker serves, the JSON names
// of its params in the order of its params struct's fields (nil for a method
// that takes none). TestProtocolDoc holds protocol.md to it.
//
// This version is written by hand from the params structs in handlers/*.go:
// their json tags, with the fields of the embedded limits.Request last for
// run and create. It stands in until the list is derived from the registry
// (handlers.Service.Methods) and the structs themselves, which cannot drift
// from the code the way a hand-written copy can.
func methodParams() map[string][]string {
	// limits.Request, embedded in runParams and createParams. create's
	// decoder knows timeout too: the value is refused after decoding, with
	// "this method takes no timeout", not as an unknown field.
	limits := []string{"memory", "memory_swap", "cpus", "timeout", "pids_limit", "network_mode"}
	with := func(names ...string) []string { return append(names, limits...) }
	return map[string][]string{
		// health.go: noParams
		"health":   nil,
		"metrics":  nil,
		"shutdown": nil,
		// system.go
		"ping":    nil,
		"version": nil,
		"info":    {"format"},
		// build.go, images.go
		"build":   {"context", "tag", "file", "build_args", "platform", "no_cache", "force"},
		"images":  {"all"},
		"exists":  {"image"},
		"inspect": {"image", "format"},
		"rmi":     {"image", "force"},
		"prune":   {"all"},
		// run.go, containers.go
		"run":    with("image", "name", "entrypoint", "command", "env", "ports", "volumes", "mounts", "auto_remove", "workdir", "user", "detach"),
		"create": with("image", "name", "command", "environment", "ports", "volumes", "user"),
		"start":  {"name"},
		"stop":   {"name", "timeout"},
		"logs":   {"name", "tail"},
		"ps":     {"all"},
		"kill":   {"container", "signal"},
		"rm":     {"container", "name", "force"},
		// host.go, passwd.go
		"exec":     {"name", "command", "user"},
		"add_file": {"name", "dest_path", "content", "encoding", "mode"},
		"add_user": {"name", "username", "password", "shell"},
	}
}
