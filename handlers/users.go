package handlers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"github.com/moby/sys/user"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
)

// add_user edits the container's account files directly instead of running
// useradd: images need not have it (busybox has no adduser here), and no
// value a caller sends ever reaches a command line or a shell, which is
// what keeps the password out of `ps`, logs and shell parsing.

var (
	usernamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	shellPattern    = regexp.MustCompile(`^/[A-Za-z0-9/._+-]+$`)
)

const (
	firstUID = 1000  // the first id useradd gives a regular user
	lastUID  = 59999 // Debian's UID_MAX: above are reserved (nobody is 65534)
)

// accountsMu serialises add_user within the worker: each call reads, edits
// and writes back /etc/passwd and friends, and two calls interleaving on one
// container would lose a user. Other writers (a command in the container)
// are not covered; add_user is rare enough for one lock.
var accountsMu sync.Mutex

type addUserParams struct {
	Name     string `json:"name" rpc:"required"`
	Username string `json:"username" rpc:"required"`
	// Password is a pointer so that "" can be refused rather than taken as
	// an empty password. Its value must never appear in a message or log.
	Password *string `json:"password"`
	Shell    string  `json:"shell"`
}

type addUserResult struct {
	Username string `json:"username"`
	Created  bool   `json:"created"`
	// Note says, when it is there, that the user would not come back
	// after a stop and start (state.go).
	Note string `json:"note,omitempty"`
}

// accountFile is one of the account databases as read from the container.
type accountFile struct {
	path     string // absolute, e.g. /etc/passwd
	exists   bool
	data     []byte
	mode     int64
	uid, gid int
	write    bool // upload it (changed, or created)
}

func (s *Service) addUser(ctx context.Context, p addUserParams) (any, error) {
	if !usernamePattern.MatchString(p.Username) {
		return nil, fault.Param(fault.KindInvalidParams, "username", "\"username\" must match %s", usernamePattern)
	}
	shell := p.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	if !shellPattern.MatchString(shell) {
		return nil, fault.Param(fault.KindInvalidParams, "shell", "\"shell\" must be an absolute path of letters, digits and /._+-")
	}
	hash := "!" // no password: the account cannot log in with one
	if p.Password != nil {
		if *p.Password == "" {
			return nil, fault.Param(fault.KindInvalidParams, "password", "\"password\" must not be empty; omit it for an account without a password")
		}
		var err error
		if hash, err = hashPassword(*p.Password); err != nil {
			return nil, err
		}
	}

	ctr, err := s.podman(ctx).Lookup(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	writable, err := s.podman(ctx).WritablePlaces(ctx, ctr)
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{"/etc/passwd", "/home/" + p.Username} {
		if err := requireWritable(writable, dir, p.Name, "add_user writes"); err != nil {
			return nil, err
		}
	}
	accountsMu.Lock()
	defer accountsMu.Unlock()
	passwd, group, shadow, err := s.readAccounts(ctx, ctr)
	if err != nil {
		return nil, err
	}

	pwNames, used := passwdEntries(passwd.data)
	grNames, grIDs := groupEntries(group.data)
	shNames := shadowNames(shadow.data)
	switch {
	case pwNames[p.Username]:
		return nil, fault.Errorf(fault.KindConflict, "user %q already exists in container %q", p.Username, p.Name).With("field", "username")
	case grNames[p.Username]:
		return nil, fault.Errorf(fault.KindConflict, "a group named %q already exists in container %q", p.Username, p.Name).With("field", "username")
	case shNames[p.Username]:
		return nil, fault.Errorf(fault.KindConflict, "%q already has an /etc/shadow entry in container %q", p.Username, p.Name).With("field", "username")
	}
	id, ok := freeID(used, grIDs)
	if !ok {
		return nil, fault.Errorf(fault.KindConflict, "no free user id between %d and %d in container %q", firstUID, lastUID, p.Name)
	}

	home := "/home/" + p.Username
	passwd.data = appendLine(passwd.data, fmt.Sprintf("%s:x:%d:%d::%s:%s", p.Username, id, id, home, shell))
	group.data = appendLine(group.data, fmt.Sprintf("%s:x:%d:", p.Username, id))
	passwd.write, group.write = true, true
	if shadow.exists || p.Password != nil {
		days := time.Now().Unix() / 86400
		shadow.data = appendLine(shadow.data, fmt.Sprintf("%s:%s:%d:0:99999:7:::", p.Username, hash, days))
		shadow.write = true
		if !shadow.exists {
			// A new shadow file is readable by root only, or also by the
			// shadow group when the image has one (Debian's convention).
			shadow.mode = 0o600
			if gid, ok := lookupGID(group.data, "shadow"); ok {
				shadow.mode, shadow.gid = 0o640, gid
			}
		}
	}

	// Two uploads: the account files into /etc, the home into /home
	// (each may be an in-memory folder of its own on a read-only root).
	now := time.Now()
	var files []podman.ArchiveEntry
	for _, f := range []*accountFile{passwd, group, shadow} {
		if f.write {
			files = append(files, podman.ArchiveEntry{Header: &tar.Header{
				Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.path, "/etc/"),
				Mode: f.mode & 0o7777, Uid: f.uid, Gid: f.gid, ModTime: now,
			}, Data: f.data})
		}
	}
	homeDir, homeEntries := "/home", []podman.ArchiveEntry{{Header: &tar.Header{
		Typeflag: tar.TypeDir, Name: p.Username + "/", Mode: 0o755, Uid: id, Gid: id, ModTime: now,
	}}}
	if isDir, err := s.podman(ctx).Stat(ctx, ctr, "/home"); err != nil || !isDir {
		homeDir = "/"
		homeEntries = []podman.ArchiveEntry{
			{Header: &tar.Header{Typeflag: tar.TypeDir, Name: "home/", Mode: 0o755, ModTime: now}},
			{Header: &tar.Header{Typeflag: tar.TypeDir, Name: "home/" + p.Username + "/", Mode: 0o755, Uid: id, Gid: id, ModTime: now}},
		}
	}
	kept := true
	for _, w := range []archiveWrite{{"/etc", files}, {homeDir, homeEntries}} {
		if err := s.podman(ctx).PutArchive(ctx, ctr, w.dir, w.entries); err != nil {
			return nil, err
		}
		kept = s.state.record(ctr, w.dir, w.entries) && kept
	}
	if !kept {
		return addUserResult{Username: p.Username, Created: true, Note: journalNote(false)}, nil
	}
	return addUserResult{Username: p.Username, Created: true}, nil
}

// readAccounts reads /etc/passwd, /etc/group and /etc/shadow of a
// container. A missing file reads as empty, owned by root, 0644.
func (s *Service) readAccounts(ctx context.Context, name string) (passwd, group, shadow *accountFile, err error) {
	var files []*accountFile
	var hdrs []*tar.Header
	for _, path := range []string{"/etc/passwd", "/etc/group", "/etc/shadow"} {
		hdr, data, err := s.podman(ctx).ReadFile(ctx, name, path, maxAccountFile)
		if err != nil && !errors.Is(err, podman.ErrNoFile) {
			return nil, nil, nil, err
		}
		f := &accountFile{path: path, data: data, mode: 0o644}
		if hdr != nil {
			f.exists, f.mode = true, hdr.Mode
		}
		files, hdrs = append(files, f), append(hdrs, hdr)
	}
	passwd, group, shadow = files[0], files[1], files[2]
	// Podman's download reports every file as owned by the host user (0:0)
	// but names its real owner and group as the container knows them, so
	// the owner is found again by name (root when unnamed) and written
	// back unchanged, e.g. root:shadow for Debian's /etc/shadow.
	for i, hdr := range hdrs {
		if hdr != nil {
			files[i].uid, _ = lookupUID(passwd.data, hdr.Uname)
			files[i].gid, _ = lookupGID(group.data, hdr.Gname)
		}
	}
	return passwd, group, shadow, nil
}

// passwdEntries reads /etc/passwd content with moby/sys/user: the user
// names, and every uid and gid the file uses.
func passwdEntries(data []byte) (names map[string]bool, ids map[int]bool) {
	names, ids = map[string]bool{}, map[int]bool{}
	users, _ := user.ParsePasswdFilter(bytes.NewReader(data), func(u user.User) bool { return !isComment(u.Name) })
	for _, u := range users {
		names[u.Name], ids[u.Uid], ids[u.Gid] = true, true, true
	}
	return names, ids
}

// groupEntries reads /etc/group content with moby/sys/user: the group
// names and their gids.
func groupEntries(data []byte) (names map[string]bool, ids map[int]bool) {
	names, ids = map[string]bool{}, map[int]bool{}
	groups, _ := user.ParseGroupFilter(bytes.NewReader(data), func(g user.Group) bool { return !isComment(g.Name) })
	for _, g := range groups {
		names[g.Name], ids[g.Gid] = true, true
	}
	return names, ids
}

// shadowNames reads the user names of /etc/shadow content (its first
// field; moby/sys/user has no shadow parser, and nothing else is needed).
func shadowNames(data []byte) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), ":"); name != "" && !isComment(name) {
			names[name] = true
		}
	}
	return names
}

func isComment(name string) bool { return strings.HasPrefix(name, "#") }

// lookupUID finds the uid of a named user in /etc/passwd content.
func lookupUID(data []byte, name string) (int, bool) {
	users, err := user.ParsePasswdFilter(bytes.NewReader(data), func(u user.User) bool { return name != "" && u.Name == name })
	if err != nil || len(users) == 0 {
		return 0, false
	}
	return users[0].Uid, true
}

// lookupGID finds the gid of a named group in /etc/group content.
func lookupGID(data []byte, name string) (int, bool) {
	groups, err := user.ParseGroupFilter(bytes.NewReader(data), func(g user.Group) bool { return name != "" && g.Name == name })
	if err != nil || len(groups) == 0 {
		return 0, false
	}
	return groups[0].Gid, true
}

// freeID is the first id from firstUID to lastUID that neither a user
// (uid or gid) nor a group uses, for the new user and its group alike.
func freeID(users, groups map[int]bool) (int, bool) {
	for i := firstUID; i <= lastUID; i++ {
		if !users[i] && !groups[i] {
			return i, true
		}
	}
	return 0, false
}

// appendLine adds line to data, first ending data's last line if needed.
func appendLine(data []byte, line string) []byte {
	out := bytes.Clone(data)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(append(out, line...), '\n')
}

// maxAccountFile bounds an account database read back from a container:
// they are small; this only guards memory against a surprise.
const maxAccountFile = 16 << 20

// hashPassword hashes a password as glibc's crypt(3) does for "$6$"
// (SHA-512 crypt, 5,000 rounds, the rounds glibc uses when the setting
// names none, with a 16-character random salt): every libc's and busybox's
// login checks it, and the rounds stay implied in the stored hash.
func hashPassword(password string) (string, error) {
	h, err := shacrypt.New(shacrypt.WithSHA512(), shacrypt.WithIterations(shacrypt.IterationsDefaultOmitted), shacrypt.WithSaltLength(shacrypt.SaltLengthMax))
	if err != nil {
		return "", err
	}
	d, err := h.Hash(password)
	if err != nil {
		return "", err
	}
	return d.Encode(), nil
}

// execUser resolves an exec's user name (and group name) against the
// container's account files as they are now, read through Podman's
// archive API, which sees its in-memory /etc: Podman's exec looks names
// up in the image's files, which lack the users add_user wrote there. It
// answers "uid:gid" and the user's home; a numeric user, or a name the
// files do not hold, is answered as given (Podman then decides).
func (s *Service) execUser(ctx context.Context, ctr, u string) (spec, home string) {
	name, group, _ := strings.Cut(u, ":")
	if u == "" || isNumber(name) && (group == "" || isNumber(group)) {
		return u, ""
	}
	_, passwd, err := s.podman(ctx).ReadFile(ctx, ctr, "/etc/passwd", maxAccountFile)
	if err != nil {
		return u, ""
	}
	users, err := user.ParsePasswdFilter(bytes.NewReader(passwd), func(e user.User) bool {
		return e.Name == name || strconv.Itoa(e.Uid) == name
	})
	if err != nil || len(users) == 0 {
		return u, ""
	}
	gid := strconv.Itoa(users[0].Gid)
	if group != "" {
		if isNumber(group) {
			gid = group
		} else {
			_, groups, err := s.podman(ctx).ReadFile(ctx, ctr, "/etc/group", maxAccountFile)
			if err != nil {
				return u, ""
			}
			id, ok := lookupGID(groups, group)
			if !ok {
				return u, ""
			}
			gid = strconv.Itoa(id)
		}
	}
	return strconv.Itoa(users[0].Uid) + ":" + gid, users[0].Home
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
