// Package argparse reads a command line the way Python's argparse
// (CPython 3.10 to 3.12) read the seed CLI's, podman_client.py: the
// worker's per-call CLI is a drop-in replacement for it, and its callers
// were written against argparse, so its acceptances and refusals are kept,
// not only its documented forms. That means: any unique prefix of a long
// option (--time for --timeout), --opt=value, attached short values
// (-eK=V), combined flags (-fh), options anywhere among the arguments,
// negative numbers as values, Python's int() and float() for typed values,
// and argparse's usage, help and error texts (repr-quoted values, 78
// columns), which the caller prints with exit status 2 (or 0 for help).
//
// Only what the seed used is emulated: one subparser a command, each with
// at most one positional argument, and the actions below. What the line
// means (calling a method, printing envelopes) is the caller's.
//
// The seed's options (Seed), as its argparse defined them (long form
// first, as its document lists them); short forms the document does not
// show follow the podman CLI's own (images/ps -a, info/inspect -f, kill -s,
// rm/rmi -f):
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
//	                     --no-auto-remove           flag (off)            auto_remove=false
//	                     --network-mode             string                network_mode
//	                     --memory                   string                memory
//	                     --memory-swap              string                memory_swap
//	                     --cpus                     float                 cpus
//	                     --timeout                  int                   timeout
//	                     --workdir           -w     string                workdir
//	                     --input-file               string                input_file
//	ps       -           --all               -a     flag                  all
//	kill     container   --signal            -s     string                signal
//	rm       container   --force             -f     flag                  force
//
// version, ping and prune take nothing; every command takes -h/--help.
// An option not given leaves its param out, so the method's default (the
// seed's: 20m, 0.5 cpus, 5 s, network none, SIGKILL) applies.
package argparse
