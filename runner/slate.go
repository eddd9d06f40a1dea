package runner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Bounds on what an instance may hold in its writable places when it
// starts: the runner keeps a copy to put back after each invocation.
const (
	maxSlateEntries   = 10000
	maxSlateFileBytes = 64 << 10 // a file larger than this is not restorable
	maxSlateBytes     = 4 << 20
)

// entry is one path of a writable place as the instance started with it.
type entry struct {
	mode     fs.FileMode
	uid, gid uint32
	data     []byte // regular files: the content
	link     string // symlinks: the target
	tooLarge bool   // a regular file larger than maxSlateFileBytes
}

// slate is the writable places of the instance as they were at its start.
type slate struct {
	dirs    []string          // writable mounted directories, deepest first
	files   []string          // writable mounted single files (/etc/hosts)
	entries map[string]*entry // every path under dirs, and files
	mounts  map[string]bool   // every mount point: a walk never crosses one
}

// skipTypes are file systems that hold no state an invocation could
// leave: the kernel's views, and the runner's own channel.
var skipTypes = map[string]bool{"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true}

// takeSlate records every writable mount but the caller's volumes (keep).
func takeSlate(keep []string) (*slate, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kept := map[string]bool{}
	for _, k := range keep {
		kept[filepath.Clean(k)] = true
	}
	s := &slate{entries: map[string]*entry{}, mounts: map[string]bool{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := indexOf(fields, "-")
		if len(fields) < 6 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		point := unescape(fields[4])
		s.mounts[point] = true
		fstype := fields[sep+1]
		if skipTypes[fstype] || kept[point] || !hasOption(fields[5], "rw") || under(point, "/proc") || under(point, "/sys") {
			continue
		}
		fi, err := os.Lstat(point)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			s.dirs = append(s.dirs, point)
		} else {
			s.files = append(s.files, point)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Deepest first: /dev/shm is walked before /dev, which then skips it.
	sort.Slice(s.dirs, func(i, j int) bool { return len(s.dirs[i]) > len(s.dirs[j]) })
	total := 0
	for _, d := range s.dirs {
		err := s.walk(d, func(p string, fi fs.FileInfo) error {
			e, err := record(p, fi)
			if err != nil {
				return err
			}
			total += len(e.data)
			s.entries[p] = e
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, p := range s.files {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		e, err := record(p, fi)
		if err != nil {
			return nil, err
		}
		total += len(e.data)
		s.entries[p] = e
	}
	if len(s.entries) > maxSlateEntries || total > maxSlateBytes {
		return nil, fmt.Errorf("the writable places hold %d entries and %d bytes at the start, more than a clean slate can be kept of", len(s.entries), total)
	}
	return s, nil
}

// walk visits every path under dir (not dir itself), without crossing
// into another mount.
func (s *slate) walk(dir string, visit func(p string, fi fs.FileInfo) error) error {
	return filepath.Walk(dir, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrPermission) {
				// A folder the function made unreadable: reset opens it.
				return visit(p, fi)
			}
			return err
		}
		if p == dir {
			return nil
		}
		if s.mounts[p] {
			return filepath.SkipDir
		}
		return visit(p, fi)
	})
}

func record(p string, fi fs.FileInfo) (*entry, error) {
	e := &entry{mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.uid, e.gid = st.Uid, st.Gid
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		e.link = t
	case fi.Mode().IsRegular():
		if fi.Size() > maxSlateFileBytes {
			e.tooLarge = true
			break
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		e.data = data
	}
	return e, nil
}

// restore puts every writable place back as it was at the start, and
// removes the System V IPC objects an invocation left.
func (s *slate) restore() error {
	for _, d := range s.dirs {
		var extra []string
		err := s.walk(d, func(p string, fi fs.FileInfo) error {
			if _, ok := s.entries[p]; !ok {
				extra = append(extra, p)
				if fi != nil && fi.IsDir() {
					return filepath.SkipDir
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range extra {
			if err := removeAll(p); err != nil {
				return err
			}
		}
	}
	for p, e := range s.entries {
		if err := e.putBack(p); err != nil {
			return err
		}
	}
	return removeIPC()
}

// putBack makes p as e recorded it, if it changed.
func (e *entry) putBack(p string) error {
	fi, err := os.Lstat(p)
	if err == nil {
		same := fi.Mode() == e.mode
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Uid != e.uid || st.Gid != e.gid) {
			same = false
		}
		switch {
		case !same:
		case e.mode.IsDir():
			return nil
		case e.mode&fs.ModeSymlink != 0:
			if t, err := os.Readlink(p); err == nil && t == e.link {
				return nil
			}
		case e.mode.IsRegular() && !e.tooLarge:
			if data, err := os.ReadFile(p); err == nil && bytes.Equal(data, e.data) {
				return nil
			}
		case e.mode.IsRegular():
			return nil // not kept: only its kind and mode are checked
		default:
			return nil // a device, socket or fifo, still there
		}
	}
	switch {
	case e.mode.IsDir():
		if err == nil && !fi.IsDir() {
			if err := removeAll(p); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
	case e.mode&fs.ModeSymlink != 0:
		_ = os.Remove(p)
		if err := os.Symlink(e.link, p); err != nil {
			return err
		}
		return os.Lchown(p, int(e.uid), int(e.gid))
	case e.mode.IsRegular() && !e.tooLarge:
		if err == nil && fi.IsDir() {
			if err := removeAll(p); err != nil {
				return err
			}
		}
		// Write in place: a bind-mounted file (/etc/hosts) cannot be
		// replaced, only rewritten.
		_ = os.Chmod(p, 0o600)
		if err := os.WriteFile(p, e.data, 0o600); err != nil {
			return fmt.Errorf("restoring %s: %w", p, err)
		}
	default:
		return fmt.Errorf("%s changed and cannot be restored (%v)", p, e.mode.Type())
	}
	if err := os.Lchown(p, int(e.uid), int(e.gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return os.Chmod(p, e.mode.Perm()|e.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

// removeAll removes p, opening up folders the function closed first.
func removeAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	_ = filepath.Walk(p, func(q string, fi fs.FileInfo, err error) error {
		if fi != nil && fi.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		return nil
	})
	_ = os.Chmod(p, 0o700)
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}

// removeIPC removes every System V shared memory segment, message queue
// and semaphore set of the IPC namespace (the instance's own).
func removeIPC() error {
	for _, k := range []struct {
		file string
		rm   func(id int) error
	}{
		{"/proc/sysvipc/shm", func(id int) error { return ipcRemove(syscall.SYS_SHMCTL, id) }},
		{"/proc/sysvipc/msg", func(id int) error { return ipcRemove(syscall.SYS_MSGCTL, id) }},
		{"/proc/sysvipc/sem", func(id int) error { return ipcRemove(syscall.SYS_SEMCTL, id) }},
	} {
		data, err := os.ReadFile(k.file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			var id int
			if _, err := fmt.Sscan(f[1], &id); err != nil {
				continue
			}
			if err := k.rm(id); err != nil {
				return fmt.Errorf("removing System V IPC object %d (%s): %w", id, k.file, err)
			}
		}
	}
	return nil
}

func ipcRemove(call uintptr, id int) error {
	const ipcRMID = 0
	var err syscall.Errno
	if call == syscall.SYS_SEMCTL {
		_, _, err = syscall.Syscall6(call, uintptr(id), 0, ipcRMID, 0, 0, 0)
	} else {
		_, _, err = syscall.Syscall(call, uintptr(id), ipcRMID, 0)
	}
	if err != 0 && err != syscall.EINVAL && err != syscall.EIDRM {
		return err
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func hasOption(opts, o string) bool {
	for _, v := range strings.Split(opts, ",") {
		if v == o {
			return true
		}
	}
	return false
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// unescape reads mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
