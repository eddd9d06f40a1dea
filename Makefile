# podman-worker: build, run, test and benchmark against a real, private Podman.
#
# make build   bin/podman-worker
# make run     build, then run the examples session against an embedded
#              private Podman service (or PODMAN_SOCKET_PATH if set)
# make test    install what is missing (podman, runc, busybox-static,
#              openssh-server from Debian, as root), go vet, go test -race
#              against a private service, then test-compat (as root)
# make bench   benchmarks, reported as ratios against a baseline of the same run
# make fuzz    run each fuzz target for FUZZTIME (default 60s)
# make golden  rewrite the expected output of all three golden suites
#              (testdata/golden, golden-cli, golden-http); review the diff
# make test-compat  the golden suites against Podman 5 (Debian 13's, in a
#              root of its own; needs root)

GO        ?= go
TAGS      := remote exclude_graphdriver_btrfs btrfs_noversion containers_image_openpgp exclude_graphdriver_devicemapper
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
PKGS      := ./...
DEB_PKGS  := podman runc busybox-static openssh-server docker-registry

.PHONY: build run test test-compat deps vet bench fuzz golden clean

build:
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o bin/podman-worker ./cmd/podman-worker
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/podman-worker-runner ./cmd/podman-worker-runner

# deps installs Podman and friends from Debian's packages when they are
# missing. It needs root (CI runs as root); otherwise it says what to install.
# busybox-static is checked by package: Debian's dynamic busybox also
# provides /bin/busybox, which cannot run in an image without a libc.
# openssh-server gives the tests a private sshd (podmantest.StartSSHD) for
# Podman over ssh://; the tests never start or configure the machine's own.
# docker-registry (the CNCF distribution registry) gives the registry tests a
# private registry on 127.0.0.1 (podmantest.StartRegistry); they make its
# htpasswd file themselves (bcrypt in Go), so apache2-utils is not needed.
deps:
	@missing=""; \
	command -v podman >/dev/null 2>&1 || missing="$$missing podman"; \
	command -v runc >/dev/null 2>&1 || missing="$$missing runc"; \
	dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	test -x /usr/bin/docker-registry || missing="$$missing docker-registry"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing:$$missing; run: sudo apt-get install -y $(DEB_PKGS)"; exit 1; \
		fi; \
		echo "installing$$missing from Debian's packages"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	fi

vet:
	$(GO) vet -tags "$(TAGS)" $(PKGS)

# test ends with test-compat when it can: that needs root (debootstrap,
# mounts, a mount namespace), which CI has; elsewhere it says it skipped it.
test: deps vet
	$(GO) test -race -tags "$(TAGS)" -count=1 -timeout 20m $(PKGS)
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory test-compat; \
	else echo "test-compat skipped: it needs root (debootstrap, mounts); run: sudo make test-compat"; fi

bench: deps
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'Ping$$' -benchtime 5000x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'PingScraped$$' -benchtime 5000x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'Run$$' -benchtime 40x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'RunPrewarmed$$' -benchtime 40x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'RunInput$$' -benchtime 40x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'RunReused$$' -benchtime 40x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'RunReusedThroughput' -benchtime 200x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'CopyImage' -benchtime 10x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'PingConcurrent' -benchtime 5000x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'PodmanVersionPerCall' -benchtime 64x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'RunThroughput' -benchtime 40x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'Startup' -benchtime 10x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'PingOverSSH' -benchtime 2000x -count 1 ./cmd/podman-worker
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench 'RunOverSSH' -benchtime 40x -count 1 ./cmd/podman-worker

# test-compat runs the golden suites (protocol, CLI and HTTP) against Podman 5
# (Debian 13's, in a root of its own that .ci/podman5.sh builds and starts),
# so the worker is known to answer the same on Podman 4 and 5.
test-compat: deps
	@sock=$$(.ci/podman5.sh start) || exit 1; \
	PODMAN_WORKER_TEST_SOCKET=$$sock $(GO) test -tags "$(TAGS)" -count=1 -run 'TestGolden|TestCLIGolden|TestHTTPGolden' ./cmd/podman-worker; \
	rc=$$?; .ci/podman5.sh stop; exit $$rc

# fuzz explores every fuzz target in the tree (found by name, so a new one
# is never left out) for FUZZTIME; go test runs their seeds every time.
FUZZTIME ?= 60s
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$t ($$(dirname $$f))"; \
	    $(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
	  done; \
	done

# golden rewrites the goldens from what the worker now answers, against a
# private Podman (Podman 4 here; make test-compat then checks Podman 5).
golden: deps
	$(GO) test -tags "$(TAGS)" -count=1 -run '^(TestGolden|TestCLIGolden|TestHTTPGolden)$$' ./cmd/podman-worker -update

run: deps build
	./examples/run.sh

clean:
	rm -rf bin
