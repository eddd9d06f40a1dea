package handlers

import (
	"strings"
	"testing"
)

// The test vectors of Drepper's specification ("Unix crypt using SHA-256
// and SHA-512"), which glibc's crypt(3) also passes.
func TestSHA512Crypt(t *testing.T) {
	tests := []struct{ setting, key, want string }{
		{"$6$saltstring", "Hello world!",
			"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
			"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"$6$rounds=5000$toolongsaltstring", "This is just a test",
			"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
		{"$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.",
			"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
		{"$6$rounds=77777$short", "we have a short salt string but not a short password",
			"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
		{"$6$rounds=123456$asaltof16chars..", "a short string",
			"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
		// Too few rounds are raised to the minimum, and the output says so.
		{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
			"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	}
	for _, tt := range tests {
		if got := sha512Crypt([]byte(tt.key), tt.setting); got != tt.want {
			t.Errorf("sha512Crypt(%q, %q)\n got %s\nwant %s", tt.key, tt.setting, got, tt.want)
		}
		// A stored hash serves as its own setting.
		if !sha512CryptVerify([]byte(tt.key), tt.want) {
			t.Errorf("sha512CryptVerify(%q, %s) = false", tt.key, tt.want)
		}
		if sha512CryptVerify([]byte(tt.key+"x"), tt.want) {
			t.Errorf("sha512CryptVerify accepted a wrong key for %s", tt.want)
		}
	}
}

func TestNewSalt(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		salt, err := newSalt()
		if err != nil {
			t.Fatal(err)
		}
		if len(salt) != 16 || strings.Trim(salt, cryptAlphabet) != "" {
			t.Fatalf("salt %q: want 16 characters of %s", salt, cryptAlphabet)
		}
		if seen[salt] {
			t.Fatalf("salt %q repeated", salt)
		}
		seen[salt] = true
	}
}

func TestAccountFiles(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n# comment\nuser:x:1000:1001::/home/u:/bin/sh\nbroken")
	names, ids := accountEntries(passwd, 2, 3)
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
	if gid, ok := lookupID([]byte("root:x:0:\nshadow:x:42:\n"), "shadow"); !ok || gid != 42 {
		t.Errorf("lookupID(shadow) = %d, %v", gid, ok)
	}
	if _, ok := lookupID([]byte("root:x:0:\n"), ""); ok {
		t.Error("lookupID found an unnamed entry")
	}
}
