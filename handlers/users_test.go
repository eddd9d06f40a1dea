package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"github.com/podman-worker/podman-worker/fault"
)

// The hash is SHA-512 crypt with the implied 5,000 rounds and a fresh
// 16-character salt each time, and it verifies (the end-to-end test checks
// it against the container's own mkpasswd as well).
func TestHashPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		hash, err := hashPassword("pw")
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(hash, "$")
		if len(parts) != 4 || parts[1] != "6" || len(parts[2]) != 16 || len(parts[3]) != 86 {
			t.Fatalf("hash %q: want $6$<16-character salt>$<86 characters>", hash)
		}
		if seen[parts[2]] {
			t.Fatalf("salt %q repeated", parts[2])
		}
		seen[parts[2]] = true
		if !verifies("pw", hash) || verifies("pwx", hash) {
			t.Fatalf("hash %q does not verify as it should", hash)
		}
	}
}

// verifies checks a "$6$" hash with the hashing library's decoder.
func verifies(password, hash string) bool {
	d, err := shacrypt.Decode(hash)
	return err == nil && d.Match(password)
}

func TestAccountFiles(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n# comment\nuser:x:1000:1001::/home/u:/bin/sh\nbroken")
	names, ids := passwdEntries(passwd)
	for _, n := range []string{"root", "user", "broken"} {
		if !names[n] {
			t.Errorf("name %q not found in %v", n, names)
		}
	}
	for _, id := range []int{0, 1000, 1001} {
		if !ids[id] {
			t.Errorf("id %d not found in %v", id, ids)
		}
	}
	if got := string(appendLine([]byte("a"), "b")); got != "a\nb\n" {
		t.Errorf("appendLine without a final newline: %q", got)
	}
	if got := string(appendLine(nil, "b")); got != "b\n" {
		t.Errorf("appendLine to nothing: %q", got)
	}
	if names["# comment"] {
		t.Error("a comment line was read as a user")
	}
	if gid, ok := lookupGID([]byte("root:x:0:\nshadow:x:42:\n"), "shadow"); !ok || gid != 42 {
		t.Errorf("lookupGID(shadow) = %d, %v", gid, ok)
	}
	if _, ok := lookupGID([]byte("root:x:0:\n"), ""); ok {
		t.Error("lookupGID found an unnamed entry")
	}
	if uid, ok := lookupUID(passwd, "user"); !ok || uid != 1000 {
		t.Errorf("lookupUID(user) = %d, %v", uid, ok)
	}
	grNames, gids := groupEntries([]byte("root:x:0:\nstaff:x:50:a,b\n"))
	if !grNames["staff"] || !gids[50] || len(grNames) != 2 {
		t.Errorf("groupEntries = %v, %v", grNames, gids)
	}
	if sh := shadowNames([]byte("root:*:19000:0:99999:7:::\n#x\nuser:$6$s$h:19000::::::\n")); !sh["root"] || !sh["user"] || len(sh) != 2 {
		t.Errorf("shadowNames = %v", sh)
	}
}

func TestAddUser(t *testing.T) {
	e := podmanTest(t)
	addUser := adapt(e.s, e.s.addUser).call
	exec := adapt(e.s, e.s.exec).call
	c := e.container(t, true)
	const password = "s3cret Pässword;$(x)"
	type result struct {
		Username string `json:"username"`
		Created  bool   `json:"created"`
	}
	// Every answer is kept, to check that the password appears in none.
	var replies []string
	record := func(raw json.RawMessage, err error) {
		replies = append(replies, string(raw))
		if rerr := fault.As(err); err != nil {
			b, _ := json.Marshal(rerr.Fields)
			replies = append(replies, rerr.Message, string(b))
		}
	}
	fail := func(params string, kind fault.Kind, field string) {
		t.Helper()
		record(nil, wantError(t, addUser, params, kind, field))
	}
	run := func(params string) execOut { t.Helper(); return mustCall[execOut](t, exec, params) }

	// Debian's arrangement: /etc/shadow is root:shadow 0640; add_user must
	// keep it.
	if out := run(`{"name":` + q(c) + `,"command":"echo shadow:x:42: >> /etc/group && chown root:shadow /etc/shadow"}`); !out.Success {
		t.Fatalf("preparing the container: %+v", out)
	}
	raw, err := call(context.Background(), addUser, `{"name":`+q(c)+`,"username":"bob","password":`+q(password)+`}`)
	record(raw, err)
	if err != nil || string(raw) != `{"username":"bob","created":true}` {
		t.Fatalf("add_user bob: %s, %v", raw, err)
	}
	if out := run(`{"name":` + q(c) + `,"command":["id","bob"]}`); !strings.HasPrefix(out.Output, "uid=1000(bob) gid=1000(bob)") {
		t.Errorf("id bob: %+v", out)
	}
	if out := run(`{"name":` + q(c) + `,"command":"id -un; id -u","user":"bob"}`); out.Output != "bob\n1000\n" {
		t.Errorf("as bob: %+v", out)
	}
	if out := run(`{"name":` + q(c) + `,"command":["stat","-c","%a %u:%g","/home/bob"]}`); out.Output != "755 1000:1000\n" {
		t.Errorf("home: %+v", out)
	}
	if out := run(`{"name":` + q(c) + `,"command":["touch","/home/bob/x"],"user":"bob"}`); !out.Success {
		t.Errorf("bob cannot write to his home: %+v", out)
	}

	checkBobsAccount(t, e, c, run, password)

	// A second user without a password gets the next id and a locked entry.
	mustCall[result](t, addUser, `{"name":`+q(c)+`,"username":"alice","shell":"/bin/ash"}`)
	if out := run(`{"name":` + q(c) + `,"command":["id","alice"]}`); !strings.HasPrefix(out.Output, "uid=1001(alice) gid=1001(alice)") {
		t.Errorf("id alice: %+v", out)
	}
	_, shadow := e.readBack(t, c, "/etc/shadow")
	if entry := shadowEntry(t, shadow, "alice"); !strings.HasPrefix(entry, "alice:!:") {
		t.Errorf("alice's shadow entry %q is not locked", entry)
	}

	t.Run("errors", func(t *testing.T) {
		fail(`{"name":`+q(c)+`,"username":"bob","password":`+q(password)+`}`, fault.KindConflict, "username")
		fail(`{"name":"no-such-container","username":"carol","password":`+q(password)+`}`, fault.KindNotFound, "")
		for _, bad := range []string{`"Bob"`, `"1bob"`, `"bob;id"`, `"a b"`, `"` + strings.Repeat("a", 33) + `"`, `""`, `7`} {
			fail(`{"name":`+q(c)+`,"username":`+bad+`,"password":`+q(password)+`}`, fault.KindInvalidParams, "username")
		}
		for _, bad := range []string{`"sh"`, `"/bin/sh -c"`, `"/bin/$(x)"`, `"/"`} {
			fail(`{"name":`+q(c)+`,"username":"carol","shell":`+bad+`,"password":`+q(password)+`}`, fault.KindInvalidParams, "shell")
		}
		fail(`{"name":`+q(c)+`,"username":"carol","password":""}`, fault.KindInvalidParams, "password")
		fail(`{"name":`+q(c)+`,"username":"carol","password":12345678}`, fault.KindInvalidParams, "password")
		fail(`{"name":`+q(c)+`,"username":"carol","password":`+q(password)+`,"extra":1}`, fault.KindInvalidParams, "extra")
	})
	for _, r := range replies {
		if strings.Contains(r, "s3cret") || strings.Contains(r, "Pässword") {
			t.Errorf("a reply shows the password: %s", r)
		}
	}

	t.Run("no shadow file, created container", func(t *testing.T) {
		// An image without /etc/shadow gets one, readable by root only (the
		// busybox image has no shadow group); a created container is edited
		// through the archive endpoints all the same.
		c := e.container(t, true)
		if out := run(`{"name":` + q(c) + `,"command":["rm","/etc/shadow"]}`); !out.Success {
			t.Fatalf("rm /etc/shadow: %+v", out)
		}
		if err := containers.Stop(e.conn, c, new(containers.StopOptions).WithTimeout(0)); err != nil {
			t.Fatal(err)
		}
		mustCall[result](t, addUser, `{"name":`+q(c)+`,"username":"dave","password":"pw"}`)
		// The download names owners as the container knows them (its ids
		// are always 0:0), and the container cannot run stat now.
		hdr, shadow := e.readBack(t, c, "/etc/shadow")
		entry := shadowEntry(t, shadow, "dave")
		if hdr.Mode&0o7777 != 0o600 || hdr.Uname != "root" || hdr.Gname != "root" || !verifies("pw", strings.Split(entry, ":")[1]) {
			t.Errorf("new /etc/shadow: mode %o owner %s:%s, %q", hdr.Mode, hdr.Uname, hdr.Gname, shadow)
		}
		hdr, _ = e.readBack(t, c, "/home/dave")
		if !hdr.FileInfo().IsDir() || hdr.Uname != "dave" || hdr.Gname != "dave" || hdr.Mode&0o7777 != 0o755 {
			t.Errorf("/home/dave: %+v", hdr)
		}
	})
}

// checkBobsAccount: bob's shadow entry's hash verifies, with Go and with
// the container's own mkpasswd, the account files kept their modes and
// owners, and /etc/passwd ends with bob.
func checkBobsAccount(t *testing.T, e *podmanEnv, c string, run func(string) execOut, password string) {
	t.Helper()
	if out := run(`{"name":` + q(c) + `,"command":["stat","-c","%n %a %U:%G","/etc/passwd","/etc/group","/etc/shadow"]}`); out.Output !=
		"/etc/passwd 644 root:root\n/etc/group 644 root:root\n/etc/shadow 640 root:shadow\n" {
		t.Errorf("the account files changed mode or owner: %s", out.Output)
	}
	_, shadow := e.readBack(t, c, "/etc/shadow")
	if !strings.HasPrefix(string(shadow), "root:*:19000:0:99999:7:::\n") {
		t.Errorf("/etc/shadow lost its first line: %q", shadow)
	}
	entry := shadowEntry(t, shadow, "bob")
	fields := strings.Split(entry, ":")
	days := fmt.Sprint(time.Now().Unix() / 86400)
	if len(fields) != 9 || fields[2] != days || strings.Join(fields[3:], ":") != "0:99999:7:::" {
		t.Errorf("shadow entry %q", entry)
	}
	hash := fields[1]
	salt := strings.Split(hash, "$")[2]
	if !strings.HasPrefix(hash, "$6$") || len(salt) != 16 || !verifies(password, hash) {
		t.Errorf("shadow hash %q does not verify", hash)
	}
	if out := run(`{"name":` + q(c) + `,"command":["mkpasswd","-m","sha512","-S",` + q(salt) + `,` + q(password) + `]}`); out.Output != hash+"\n" {
		t.Errorf("busybox mkpasswd: %q, want %q", out.Output, hash)
	}
	if _, passwd := e.readBack(t, c, "/etc/passwd"); !strings.HasSuffix(string(passwd), "\nbob:x:1000:1000::/home/bob:/bin/sh\n") {
		t.Errorf("/etc/passwd: %q", passwd)
	}
}

// shadowEntry finds user's line in /etc/shadow content.
func shadowEntry(t *testing.T, shadow []byte, user string) string {
	t.Helper()
	for _, line := range strings.Split(string(shadow), "\n") {
		if strings.HasPrefix(line, user+":") {
			return line
		}
	}
	t.Fatalf("no shadow entry for %s in %q", user, shadow)
	return ""
}
