package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Main is the runner: PID 1 of a warm instance. args are its arguments:
// "--keep DIR" (repeated) names the caller's volumes, left as they are
// between invocations, then "--", then the function's argv. It returns
// only when the worker closes its stdin or the instance cannot go on.
func Main(args []string, stdin io.Reader, stdout io.Writer) int {
	// Small: the runner's memory counts against the instance's limit.
	debug.SetGCPercent(20)
	out := NewWriter(stdout)
	fail := func(format string, a ...any) int {
		_ = out.Write(Fault, fmt.Appendf(nil, format, a...))
		return 1
	}
	// A function running as the same user must not trace the runner or
	// open its /proc/1/fd (the channel to the worker), nor end it with a
	// signal: PID 1 gets only the signals it handles, and these are
	// ignored.
	if err := setNotDumpable(); err != nil {
		return fail("prctl(PR_SET_DUMPABLE): %v", err)
	}
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)

	var keep []string
	for len(args) > 0 && args[0] != "--" {
		if args[0] == "--keep" && len(args) > 1 {
			keep = append(keep, args[1])
			args = args[2:]
			continue
		}
		return fail("runner: unknown argument %q", args[0])
	}
	if len(args) < 2 {
		return fail("runner: no command after --")
	}
	argv := args[1:]
	env := os.Environ()
	dir, err := os.Getwd()
	if err != nil {
		return fail("runner: working directory: %v", err)
	}
	slate, err := takeSlate(keep)
	if err != nil {
		return fail("runner: %v", err)
	}
	for {
		if err := out.Write(Ready, nil); err != nil {
			return 1
		}
		t, _, err := ReadFrame(stdin)
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			return fail("runner: reading the channel: %v", err)
		}
		if t != Start {
			return fail("runner: frame %q where Start was expected", t)
		}
		st, err := invoke(argv, env, dir, stdin, out)
		if err != nil {
			return fail("runner: %v", err)
		}
		if err := out.WriteExit(st); err != nil {
			return 1
		}
		if err := slate.restore(); err != nil {
			return fail("runner: the next invocation cannot start clean: %v", err)
		}
	}
}

// invoke runs one invocation: the function with its input, output relayed
// as frames, and every process it left killed and reaped before the exit
// status is returned.
func invoke(argv, env []string, dir string, in io.Reader, out *Writer) (ExitStatus, error) {
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return ExitStatus{}, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return ExitStatus{}, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return ExitStatus{}, err
	}
	relayed := make(chan struct{}, 2)
	relay := func(t byte, r *os.File) {
		defer func() { relayed <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				_ = out.Write(t, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}
	go relay(Stdout, outR)
	go relay(Stderr, errR)

	var st ExitStatus
	path, err := lookPath(argv[0], env)
	var proc *os.Process
	if err == nil {
		// The function's processes, not the runner, are what the OOM
		// killer should pick at the memory limit: they inherit the
		// highest oom_score_adj, set on the runner for the fork and put
		// back after (lowering it back to where Podman set it needs no
		// privilege).
		restore := raiseOOMScore()
		proc, err = os.StartProcess(path, argv, &os.ProcAttr{
			Dir: dir, Env: env, Files: []*os.File{stdinR, outW, errW},
			Sys: &syscall.SysProcAttr{Setsid: true},
		})
		restore()
	}
	stdinR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		// As runc reports a command that cannot start: 127 when it is
		// not found, 126 when it cannot be executed.
		st = ExitStatus{Code: 126, Error: err.Error()}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			st.Code = 127
		}
	}
	// The input: copied until InputEnd, even when the function does not
	// read it (the rest is dropped once its stdin is closed).
	inputErr := make(chan error, 1)
	go func() { inputErr <- copyInput(in, stdinW) }()

	if proc != nil {
		ws, err := waitFor(proc.Pid)
		if err != nil {
			return st, err
		}
		switch {
		case ws.Exited():
			st.Code = ws.ExitStatus()
		case ws.Signaled():
			st.Signal = int(ws.Signal())
			st.Code = 128 + st.Signal
		}
	}
	// The invocation is over when its process is: as when a container's
	// main process exits, everything else it started goes too.
	if err := killAll(); err != nil {
		return st, err
	}
	<-relayed
	<-relayed
	outR.Close()
	errR.Close()
	if err := <-inputErr; err != nil {
		return st, err
	}
	return st, nil
}

// copyInput copies Input frames to w until InputEnd, then closes w.
// Writes that fail (the function closed its stdin or exited) are dropped.
func copyInput(r io.Reader, w *os.File) error {
	defer w.Close()
	broken := false
	for {
		t, p, err := ReadFrame(r)
		if err != nil {
			return fmt.Errorf("reading the input: %w", err)
		}
		switch t {
		case InputEnd:
			return nil
		case Input:
			if !broken {
				if _, err := w.Write(p); err != nil {
					broken = true
					w.Close()
				}
			}
		default:
			return fmt.Errorf("frame %q in the middle of an input", t)
		}
	}
}

// waitFor reaps children until pid exits, and answers its status. Other
// children reaped on the way are processes the function left, reparented
// to PID 1.
func waitFor(pid int) (syscall.WaitStatus, error) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return ws, fmt.Errorf("waiting for the function: %w", err)
		}
		if got == pid && (ws.Exited() || ws.Signaled()) {
			return ws, nil
		}
	}
}

// killAll kills every other process of the PID namespace and reaps them.
func killAll() error {
	if err := syscall.Kill(-1, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill(-1): %w", err)
	}
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.ECHILD):
			return nil
		case err != nil:
			return fmt.Errorf("reaping: %w", err)
		}
	}
}

// lookPath finds file in the PATH of env, as runc does for a container's
// process (the runner's own PATH is the same, but env is what counts).
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", &exec.Error{Name: file, Err: err}
		}
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}

// raiseOOMScore sets the runner's oom_score_adj to 1000 and returns the
// func that puts the old value back.
func raiseOOMScore() func() {
	const file = "/proc/self/oom_score_adj"
	old, err := os.ReadFile(file)
	if err != nil || os.WriteFile(file, []byte("1000"), 0) != nil {
		return func() {}
	}
	return func() { _ = os.WriteFile(file, old, 0) }
}

func setNotDumpable() error {
	const prSetDumpable = 4
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); e != 0 {
		return e
	}
	return nil
}
