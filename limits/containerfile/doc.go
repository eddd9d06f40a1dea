// Package containerfile checks a build's Containerfile against the worker's
// policy before Podman reads it.
//
// Podman 4.3.1 (buildah 1.28) follows RUN --mount, ADD <url> and FROM
// without asking anyone: cache mount ids and bind sources reached host
// paths (CVE-2024-9675, CVE-2024-1753), ADD and FROM made Podman connect to
// services on the host's loopback, and cache mounts kept data on the host
// from one owner's build to the next. The fixes are not in that version, so
// the worker reads the file first.
//
// The check is an allowlist: every instruction, flag and mount option not
// named here is refused, so a form nobody thought of fails closed. The file
// is read with buildkit's parser (the one Podman 5 links, through
// imagebuilder) and expanded with its shell lexer, not with patterns of our
// own.
//
// Podman 4.3.1 reads the file with imagebuilder's older copy of Docker's
// parser and expands it its own way, so where the two could disagree the
// form is refused rather than interpreted: heredocs, variables and quotes
// in flags, untyped or repeated mount options, files the two parsers cut
// into different instructions (lines.go), and variables whose value
// Podman may take from elsewhere (its platform and proxy arguments, a
// base image's ENV). The buildah 1.28 code each rule was checked against
// is named where the rule is.
//
// Check returns the external images the build would read (FROM,
// COPY --from=<image>); deciding which of those a caller may use is the
// worker's job, as is passing Podman exactly the bytes that were checked.
//
// Bind sources are checked with Lstat at the time of the call. A caller who
// can change the build context between the check and the build could swap
// a checked directory for a symlink; the worker must keep the context out
// of the caller's reach for the length of the build.
package containerfile
