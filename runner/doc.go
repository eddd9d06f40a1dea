// Package runner is the program inside a warm instance, and the protocol
// the worker speaks with it.
//
// A warm instance is a container kept after a run so that the next run of
// the same spec is served by it, as AWS Lambda reuses an execution
// environment and OpenWhisk a warm action container: Podman's create,
// conmon, runc and clean-up (~120 ms of Podman's CPU) are paid once per
// instance instead of once per invocation.
//
// The worker copies the static runner binary into the instance (through
// Podman's archive API, into its read-only root: nothing the function can
// write) and makes it the container's entrypoint, so it runs as PID 1 of
// the container's PID namespace, with the spec's user, environment,
// working directory, limits and mounts. Its only channel is its stdin and
// stdout, which the worker holds through Podman's attach stream: the
// same path a cold run's input and output take, over unix sockets and
// ssh alike, and nothing else an instance could reach.
//
// Per invocation the runner starts the function's command with the input
// on its stdin, relays its stdout and stderr as they come, and reports its
// exit status. Then it gives the next invocation a clean slate:
//
//   - every process the invocation started is killed (kill(-1) from PID
//     1 reaches every other process of the namespace, daemons included) and
//     reaped;
//   - every writable mount (the scratch tmpfs /tmp, /var/tmp, /run,
//     /dev/shm, /dev and /dev/mqueue, any tmpfs the caller mounted, the
//     files Podman binds such as /etc/hosts) is put back as it was when the
//     instance started: entries added are removed, files changed are
//     restored; the caller's volumes are the only writable places kept, as
//     they are across cold runs;
//   - System V IPC objects the invocation left are removed;
//   - the environment is the spec's: each invocation is a new process
//     started with the environment the container started with.
//
// Whatever the runner cannot restore (a device node removed, a file too
// large to have been kept) is a fault: it says so and exits, and the
// worker discards the instance. The runner makes itself non-dumpable, so a
// function running as the same user can neither ptrace it nor open its
// /proc/1/fd (the channel), and ignores the signals a function could send
// it.
//
// The protocol is framed: one type byte, a 4-byte big-endian length, the
// payload. The worker sends Start, Input frames and InputEnd; the runner
// answers Ready (when an invocation may begin), Stdout and Stderr frames,
// Exit (JSON), and Fault before it gives up.
package runner
