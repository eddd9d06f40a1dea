package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/httpapi"
	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/promexport"
	"github.com/podman-worker/podman-worker/handlers"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// version is the worker's version, set at build time by the Makefile.
var version = "dev"

// DefaultSocket is the seed client's default Podman socket.
const DefaultSocket = "/run/podman/podman.sock"

type config struct {
	socket string
	// socketSet says the socket was configured (flag or environment);
	// otherwise the default locations are tried, then an embedded service.
	socketSet bool
	// connections are the named ones of --connection, in order.
	connections []connectionFlag
	// podmanConnections adds Podman's own connection list.
	podmanConnections bool
	// ssh is how ssh:// URIs log in and check host keys.
	ssh            podman.SSHOptions
	podmanRoot     string
	podmanConf     string
	owner          string
	maxWorkers     int
	maxLineBytes   int64
	maxQueued      int
	maxQueuedBytes int64
	maxWarm        int
	instances      handlers.InstanceOptions
	maxInputBytes  int64
	maxOutputBytes int64
	requestTimeout time.Duration
	shutdownGrace  time.Duration
	policy         limits.Policy
	// registries are the registries pull and push may use (registry.go).
	registries  handlers.Registries
	logLevel    zerolog.Level
	showVersion bool
	// cliArgs, when set, is one seed CLI command to run instead of serving.
	cliArgs []string
	// http, when its addr is set, serves the Flask API over HTTP instead
	// of JSON-RPC on stdio.
	http httpConfig
	// metrics, when its Addr is set, serves Prometheus' /metrics there.
	metrics promexport.Config
}

type httpConfig struct {
	addr          string
	token         string
	maxBody       int64
	corsOrigins   []string
	headerTimeout time.Duration
}

// parseConfig reads flags, falling back to environment variables, so a
// supervisor can configure the worker either way. Invalid settings are an
// error that names the setting.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	fs := flag.NewFlagSet("podman-worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, in the worker's words (flagError); help is printUsage
	envOr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	socket := fs.String("socket", "", "Podman socket: unix:///PATH, a PATH, ssh://[USER@]HOST[:PORT]/PATH or tcp://HOST:PORT (env PODMAN_SOCKET_PATH, then CONTAINER_HOST; default "+DefaultSocket+")")
	var connections connectionFlags
	fs.Var(&connections, "connection", "a named Podman connection, NAME=URI or NAME=URI,IDENTITY; repeat it for more. A call chooses one with its connection param (env PODMAN_WORKER_CONNECTIONS, space-separated)")
	podmanConnections := fs.Bool("podman-connections", isTrue(getenv("PODMAN_WORKER_PODMAN_CONNECTIONS")), "also use Podman's own connections (podman system connection list); Podman's default is the default unless a socket is configured (env PODMAN_WORKER_PODMAN_CONNECTIONS=true)")
	identity := fs.String("identity", getenv("CONTAINER_SSHKEY"), "private key file for ssh:// sockets and connections that name none of their own (env CONTAINER_SSHKEY, as Podman reads it)")
	knownHosts := fs.String("known-hosts", getenv("PODMAN_WORKER_KNOWN_HOSTS"), "known_hosts file that ssh host keys are checked against (env PODMAN_WORKER_KNOWN_HOSTS; default ~/.ssh/known_hosts)")
	insecureHostKey := fs.Bool("insecure-ignore-host-key", isTrue(getenv("PODMAN_WORKER_INSECURE_IGNORE_HOST_KEY")), "accept any ssh host key, unchecked: for throwaway hosts only (env PODMAN_WORKER_INSECURE_IGNORE_HOST_KEY=true)")
	maxWorkers := fs.String("max-workers", envOr("MAX_WORKERS", strconv.Itoa(rpc.DefaultMaxWorkers)), "calls run at once; more wait their turn (env MAX_WORKERS)")
	maxLine := fs.String("max-line-bytes", envOr("MAX_LINE_BYTES", "16m"), "longest accepted input line, e.g. 16m (env MAX_LINE_BYTES)")
	maxQueued := fs.String("max-queued", envOr("MAX_QUEUED", strconv.Itoa(rpc.DefaultMaxQueued)), "calls that may wait for a worker slot; past it a call is answered Busy at once (env MAX_QUEUED)")
	maxQueuedBytes := fs.String("max-queued-bytes", envOr("MAX_QUEUED_BYTES", limits.FormatBytes(rpc.DefaultMaxQueuedBytes)), "bytes of requests that may wait for a worker slot; past it a call is answered Busy at once (env MAX_QUEUED_BYTES)")
	maxInput := fs.String("max-input-bytes", envOr("MAX_INPUT_BYTES", limits.FormatBytes(handlers.DefaultMaxInputBytes)), "largest input a run may hand its function on stdin, e.g. 6m; more is refused before any container is made (env MAX_INPUT_BYTES)")
	maxInstances := fs.String("max-instances", envOr("MAX_INSTANCES", "8"), "warm instances the worker keeps at most, of every spec together, to serve runs with reuse; 0 turns reuse off (such runs are served cold) (env MAX_INSTANCES)")
	instanceIdle := fs.String("instance-idle", envOr("INSTANCE_IDLE", "10m"), "how long a warm instance waits for its next invocation before it is removed (env INSTANCE_IDLE)")
	runnerPath := fs.String("runner", envOr("PODMAN_WORKER_RUNNER", defaultRunner()), "the static runner binary copied into each warm instance (env PODMAN_WORKER_RUNNER; default: podman-worker-runner beside the worker)")
	maxWarm := fs.String("max-warm", envOr("MAX_WARM", "8"), "prewarmed containers the worker keeps at most, of every spec together; 0 refuses prewarm (env MAX_WARM)")
	podmanRoot := fs.String("podman-root", envOr("PODMAN_WORKER_ROOT", defaultRoot(getenv)), "storage folder of the embedded Podman service, started when no socket is configured and none answers (env PODMAN_WORKER_ROOT)")
	podmanConf := fs.String("podman-conf", getenv("PODMAN_WORKER_CONTAINERS_CONF"), "containers.conf handed to the embedded Podman service (env PODMAN_WORKER_CONTAINERS_CONF)")
	owner := fs.String("owner", envOr("PODMAN_WORKER_OWNER", podman.DefaultOwner), "the label that scopes this worker's containers: it sees and acts only on containers of its owner, and removes those that dead workers of the same owner left (env PODMAN_WORKER_OWNER)")
	requestTimeout := fs.String("request-timeout", envOr("REQUEST_TIMEOUT", "30s"), "bound on every call without a timeout of its own, e.g. 30s (env REQUEST_TIMEOUT; plain seconds accepted)")
	shutdownGrace := fs.String("shutdown-grace", envOr("SHUTDOWN_GRACE", "10s"), "on SIGTERM, SIGINT or shutdown: how long calls in flight may finish before they are cancelled (env SHUTDOWN_GRACE)")
	def := limits.DefaultPolicy()
	maxOutput := fs.String("max-output-bytes", envOr("MAX_OUTPUT_BYTES", "1m"), "most output kept per stream of a run, exec or logs call (env MAX_OUTPUT_BYTES)")
	maxMemory := fs.String("max-memory", envOr("MAX_MEMORY", limits.FormatBytes(def.MaxMemory)), "ceiling on a container's memory a caller may ask for (env MAX_MEMORY)")
	maxCPUs := fs.String("max-cpus", envOr("MAX_CPUS", strconv.FormatFloat(def.MaxCPUs, 'f', -1, 64)), "ceiling on a container's cpus (env MAX_CPUS)")
	maxTimeout := fs.String("max-timeout", envOr("MAX_TIMEOUT", def.MaxTimeout.String()), "ceiling on a run's timeout, e.g. 10m (env MAX_TIMEOUT)")
	maxPids := fs.String("max-pids", envOr("MAX_PIDS", strconv.FormatInt(def.MaxPids, 10)), "ceiling on a container's pids_limit (env MAX_PIDS)")
	networkModes := fs.String("network-modes", envOr("NETWORK_MODES", strings.Join(def.NetworkModes, ",")), "network modes callers may choose, e.g. none,bridge; none is always allowed (env NETWORK_MODES)")
	maxSwap := fs.String("max-memory-swap", getenv("MAX_MEMORY_SWAP"), "ceiling on memory_swap (memory plus swap); default: the --max-memory value, so no swap beyond the memory ceiling (env MAX_MEMORY_SWAP)")
	allowCaps := fs.String("allow-caps", getenv("ALLOW_CAPS"), "capabilities a caller may add back with cap_add, e.g. NET_BIND_SERVICE; every other one is dropped (env ALLOW_CAPS)")
	portAddrs := fs.String("port-addresses", envOr("PORT_ADDRESSES", strings.Join(def.PortAddresses, ",")), "host addresses published ports may bind to; the first is the default (env PORT_ADDRESSES)")
	privPorts := fs.Bool("allow-privileged-ports", isTrue(getenv("ALLOW_PRIVILEGED_PORTS")), "let published ports use host ports below 1024 (env ALLOW_PRIVILEGED_PORTS=true)")
	mountRoots := fs.String("mount-roots", getenv("MOUNT_ROOTS"), "host directories under which bind-mount sources may lie, comma-separated; empty: only named volumes and tmpfs (env MOUNT_ROOTS)")
	buildRoots := fs.String("build-roots", getenv("BUILD_ROOTS"), "host directories under which build contexts may lie, comma-separated; empty: builds are refused (env BUILD_ROOTS)")
	namedVolumes := fs.Bool("allow-named-volumes", isTrue(getenv("ALLOW_NAMED_VOLUMES")), "let run and create mount named volumes (host disk, unbounded): each is its owner's, made and labelled by the worker; another owner's or a hand-made one is NotFound (env ALLOW_NAMED_VOLUMES=true)")
	sharedImages := fs.String("shared-images", getenv("SHARED_IMAGES"), "the operator's base images (names or ids, comma-separated) that every owner may run and build FROM and none may change; an owner's other images are those it built (env SHARED_IMAGES)")
	contextMounts := fs.Bool("build-context-mounts", isTrue(getenv("BUILD_CONTEXT_MOUNTS")), "let RUN steps bind-mount parts of their build context, read-only and without symlinks (RUN --mount=type=bind); other RUN mounts but tmpfs stay refused (env BUILD_CONTEXT_MOUNTS=true)")
	maxContext := fs.String("max-build-context", envOr("MAX_BUILD_CONTEXT", limits.FormatBytes(def.MaxBuildContext)), "largest build context, counting its files' sizes (env MAX_BUILD_CONTEXT)")
	maxBuildTimeout := fs.String("max-build-timeout", envOr("MAX_BUILD_TIMEOUT", def.MaxBuildTimeout.String()), "ceiling on a build's timeout, e.g. 30m (env MAX_BUILD_TIMEOUT)")
	maxContainers := fs.String("max-containers", envOr("MAX_CONTAINERS", strconv.Itoa(def.MaxContainers)), "long-lived containers (create's, and runs kept with auto_remove false) one owner may hold on a connection; more is refused (env MAX_CONTAINERS)")
	maxLog := fs.String("max-log-bytes", envOr("MAX_LOG_BYTES", limits.FormatBytes(def.MaxLogBytes)), "largest log file of a container made by create (env MAX_LOG_BYTES)")
	writableRoot := fs.Bool("writable-root", isTrue(getenv("WRITABLE_ROOT")), "give function containers a writable root filesystem (host disk) instead of a read-only one (env WRITABLE_ROOT=true)")
	userns := fs.String("userns", getenv("USERNS"), "user namespace of function containers: host (container root is host root) or auto (needs a containers range in /etc/subuid and /etc/subgid) (env USERNS; default host)")
	specialModes := fs.Bool("allow-special-modes", isTrue(getenv("ALLOW_SPECIAL_MODES")), "let add_file write set-uid, set-gid and sticky modes (env ALLOW_SPECIAL_MODES=true)")
	registries := fs.String("registries", getenv("PODMAN_WORKER_REGISTRIES"), "registries (HOST or HOST:PORT, comma-separated) that pull and push may use; none by default (env PODMAN_WORKER_REGISTRIES)")
	insecureRegistries := fs.String("insecure-registries", getenv("PODMAN_WORKER_INSECURE_REGISTRIES"), "registries that may be plain HTTP or have a certificate that is not verified (tls_verify false); each may be used as if in --registries (env PODMAN_WORKER_INSECURE_REGISTRIES)")
	registryAuthFile := fs.String("registry-auth-file", getenv("PODMAN_WORKER_REGISTRY_AUTH_FILE"), "a containers auth.json whose credentials pull and push use when a call sends none (env PODMAN_WORKER_REGISTRY_AUTH_FILE)")
	maxCopy := fs.String("max-copy-bytes", envOr("PODMAN_WORKER_MAX_COPY_BYTES", limits.FormatBytes(handlers.DefaultMaxCopyBytes)), "most bytes copy_image streams from one connection to another; past it the copy stops and nothing is loaded; 0 turns copy_image off (env PODMAN_WORKER_MAX_COPY_BYTES)")
	logLevel := fs.String("log-level", envOr("LOG_LEVEL", "info"), "log level on stderr: debug, info, warn, error (env LOG_LEVEL)")
	debug := fs.Bool("debug", false, "same as --log-level debug (env DEBUG=true)")
	showVersion := fs.Bool("version", false, "print the worker's version and exit")
	httpAddr := fs.String("http", getenv("PODMAN_WORKER_HTTP"), "serve the Flask Podman API (/api/v1) on ADDR, such as 127.0.0.1:8080, instead of JSON-RPC on stdio (env PODMAN_WORKER_HTTP)")
	httpTokenFile := fs.String("http-token-file", getenv("PODMAN_WORKER_HTTP_TOKEN_FILE"), "file holding the bearer token every HTTP request must carry; required when ADDR is not loopback (env PODMAN_WORKER_HTTP_TOKEN_FILE, or the token itself in PODMAN_WORKER_HTTP_TOKEN)")
	httpMaxBody := fs.String("http-max-body", envOr("PODMAN_WORKER_HTTP_MAX_BODY", "16m"), "largest HTTP request body, e.g. 16m; more is answered 413 (env PODMAN_WORKER_HTTP_MAX_BODY)")
	httpCORS := fs.String("http-cors-origins", getenv("PODMAN_WORKER_HTTP_CORS_ORIGINS"), "comma-separated origins whose browser pages may call the HTTP API, e.g. https://app.example.com, or *; none by default (env PODMAN_WORKER_HTTP_CORS_ORIGINS)")
	httpHeaderTimeout := fs.String("http-header-timeout", envOr("PODMAN_WORKER_HTTP_HEADER_TIMEOUT", "10s"), "how long a client may take to send its request line and headers (env PODMAN_WORKER_HTTP_HEADER_TIMEOUT)")
	metricsAddr := fs.String("metrics-addr", getenv("PODMAN_WORKER_METRICS_ADDR"), "serve Prometheus metrics (GET /metrics) on ADDR, such as 127.0.0.1:9464, in stdio and --http mode; beyond loopback it needs a token (env PODMAN_WORKER_METRICS_ADDR)")
	metricsTokenFile := fs.String("metrics-token-file", getenv("PODMAN_WORKER_METRICS_TOKEN_FILE"), "file holding the bearer token scrapes of --metrics-addr must carry (env PODMAN_WORKER_METRICS_TOKEN_FILE, or the token itself in PODMAN_WORKER_METRICS_TOKEN; default: the --http token)")
	fs.Usage = func() {} // the flag package calls it on every error too; --help prints below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, usage)
		}
		return nil, flagError(err)
	}
	cfg := &config{showVersion: *showVersion, cliArgs: fs.Args()}
	cfg.socket = firstNonEmpty(*socket, getenv("PODMAN_SOCKET_PATH"), getenv("CONTAINER_HOST"), DefaultSocket)
	if !strings.Contains(cfg.socket, "://") && !filepath.IsAbs(cfg.socket) {
		// A relative path ("--socket podman.sock") means the file in the
		// working directory, as it would for podman --url.
		abs, err := filepath.Abs(cfg.socket)
		if err != nil {
			return nil, fmt.Errorf("--socket %q: %v; give an absolute path, unix:///PATH, ssh://[USER@]HOST[:PORT]/PATH or tcp://HOST:PORT", cfg.socket, err)
		}
		cfg.socket = abs
	}
	cfg.socketSet = *socket != "" || getenv("PODMAN_SOCKET_PATH") != "" || getenv("CONTAINER_HOST") != ""
	if connections == nil {
		for _, c := range strings.Fields(getenv("PODMAN_WORKER_CONNECTIONS")) {
			if err := connections.Set(c); err != nil {
				return nil, fmt.Errorf("PODMAN_WORKER_CONNECTIONS: %v", err)
			}
		}
	}
	cfg.connections, cfg.podmanConnections = connections, *podmanConnections
	cfg.ssh = podman.SSHOptions{Identity: *identity, KnownHosts: *knownHosts, InsecureIgnoreHostKey: *insecureHostKey}
	root, err := filepath.Abs(*podmanRoot) // the service runs inside it: a relative path would resolve twice
	if err != nil {
		return nil, fmt.Errorf("--podman-root / PODMAN_WORKER_ROOT: %v", err)
	}
	cfg.podmanRoot = root
	cfg.podmanConf = *podmanConf

	if !ownerPattern.MatchString(*owner) {
		return nil, fmt.Errorf("--owner / PODMAN_WORKER_OWNER: %q must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit", *owner)
	}
	cfg.owner = *owner

	n, err := strconv.Atoi(*maxWorkers)
	if err != nil || n < 1 || n > 1024 {
		return nil, fmt.Errorf("--max-workers / MAX_WORKERS: %q must be a whole number from 1 to 1024", *maxWorkers)
	}
	cfg.maxWorkers = n

	size, err := limits.ParseBytes(*maxLine)
	if err != nil || size < 1024 || size > 1<<30 {
		return nil, fmt.Errorf("--max-line-bytes / MAX_LINE_BYTES: %q must be a size from 1k to 1g such as 16m", *maxLine)
	}
	cfg.maxLineBytes = size

	if cfg.maxInputBytes, err = limits.ParseBytes(*maxInput); err != nil || cfg.maxInputBytes > 1<<30 {
		return nil, fmt.Errorf("--max-input-bytes / MAX_INPUT_BYTES: %q must be a size up to 1g such as 6m", *maxInput)
	}
	if cfg.instances.Max, err = strconv.Atoi(*maxInstances); err != nil || cfg.instances.Max < 0 || cfg.instances.Max > 1024 {
		return nil, fmt.Errorf("--max-instances / MAX_INSTANCES: %q must be a whole number from 0 to 1024", *maxInstances)
	}
	if cfg.instances.Idle, err = parseSeconds(*instanceIdle); err != nil || cfg.instances.Idle <= 0 {
		return nil, fmt.Errorf("--instance-idle / INSTANCE_IDLE: %q must be a duration above 0 such as 10m", *instanceIdle)
	}
	cfg.instances.Runner = *runnerPath
	if cfg.maxWarm, err = strconv.Atoi(*maxWarm); err != nil || cfg.maxWarm < 0 || cfg.maxWarm > 1024 {
		return nil, fmt.Errorf("--max-warm / MAX_WARM: %q must be a whole number from 0 to 1024", *maxWarm)
	}
	if cfg.maxQueued, err = strconv.Atoi(*maxQueued); err != nil || cfg.maxQueued < 1 || cfg.maxQueued > 1<<20 {
		return nil, fmt.Errorf("--max-queued / MAX_QUEUED: %q must be a whole number from 1 to 1048576", *maxQueued)
	}
	if cfg.maxQueuedBytes, err = limits.ParseBytes(*maxQueuedBytes); err != nil || cfg.maxQueuedBytes < cfg.maxLineBytes || cfg.maxQueuedBytes > 16<<30 {
		return nil, fmt.Errorf("--max-queued-bytes / MAX_QUEUED_BYTES: %q must be a size from --max-line-bytes (%s) to 16g such as 64m", *maxQueuedBytes, limits.FormatBytes(cfg.maxLineBytes))
	}

	if cfg.maxOutputBytes, err = limits.ParseBytes(*maxOutput); err != nil || cfg.maxOutputBytes > 1<<30 {
		return nil, fmt.Errorf("--max-output-bytes / MAX_OUTPUT_BYTES: %q must be a size up to 1g such as 1m", *maxOutput)
	}
	if cfg.requestTimeout, err = parseSeconds(*requestTimeout); err != nil || cfg.requestTimeout <= 0 {
		return nil, fmt.Errorf("--request-timeout / REQUEST_TIMEOUT: %q must be a positive duration such as 30s", *requestTimeout)
	}
	if cfg.shutdownGrace, err = parseSeconds(*shutdownGrace); err != nil || cfg.shutdownGrace < 0 {
		return nil, fmt.Errorf("--shutdown-grace / SHUTDOWN_GRACE: %q must be a duration such as 10s", *shutdownGrace)
	}
	if cfg.policy, err = parsePolicy(*maxMemory, *maxCPUs, *maxTimeout, *maxPids, *networkModes); err != nil {
		return nil, err
	}
	if err := parseSandbox(&cfg.policy, sandboxFlags{
		maxSwap: *maxSwap, allowCaps: *allowCaps, portAddrs: *portAddrs, mountRoots: *mountRoots, buildRoots: *buildRoots,
		maxContext: *maxContext, maxBuildTimeout: *maxBuildTimeout, maxLog: *maxLog, userns: *userns,
	}); err != nil {
		return nil, err
	}
	cfg.policy.AllowPrivilegedPorts = *privPorts
	if cfg.policy.MaxContainers, err = strconv.Atoi(*maxContainers); err != nil || cfg.policy.MaxContainers < 1 || cfg.policy.MaxContainers > 4096 {
		return nil, fmt.Errorf("--max-containers / MAX_CONTAINERS: %q must be a whole number from 1 to 4096", *maxContainers)
	}
	cfg.policy.BuildContextMounts = *contextMounts
	cfg.policy.AllowNamedVolumes = *namedVolumes
	for _, ref := range strings.Split(*sharedImages, ",") {
		if ref = strings.TrimSpace(ref); ref == "" {
			continue
		}
		if _, err := podman.NormalizeImageRef(ref); err != nil {
			return nil, fmt.Errorf("--shared-images / SHARED_IMAGES: %v", err)
		}
		cfg.policy.SharedImages = append(cfg.policy.SharedImages, ref)
	}
	if cfg.registries.Allowed, err = handlers.ParseRegistries(*registries); err != nil {
		return nil, fmt.Errorf("--registries / PODMAN_WORKER_REGISTRIES: %v", err)
	}
	if cfg.registries.Insecure, err = handlers.ParseRegistries(*insecureRegistries); err != nil {
		return nil, fmt.Errorf("--insecure-registries / PODMAN_WORKER_INSECURE_REGISTRIES: %v", err)
	}
	if f := *registryAuthFile; f != "" {
		abs, err := filepath.Abs(f)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return nil, fmt.Errorf("--registry-auth-file / PODMAN_WORKER_REGISTRY_AUTH_FILE: %v", err)
		}
		cfg.registries.AuthFile = abs
	}
	if strings.TrimSpace(*maxCopy) == "0" {
		cfg.registries.MaxCopyBytes = 0
	} else if cfg.registries.MaxCopyBytes, err = limits.ParseBytes(*maxCopy); err != nil {
		return nil, fmt.Errorf("--max-copy-bytes / PODMAN_WORKER_MAX_COPY_BYTES: %q must be a size such as 2g, or 0", *maxCopy)
	}
	cfg.policy.WritableRoot = *writableRoot
	cfg.policy.AllowSpecialModes = *specialModes
	// Never mounted, whatever --mount-roots says: the paths through which a
	// container would reach Podman itself or the host's kernel interfaces.
	// The socket the worker ends up using is added once it is known.
	cfg.policy.NeverMount = limits.NeverMountPaths(append(def.NeverMount,
		cfg.podmanRoot, "/var/lib/containers/storage", "/run/containers/storage", socketPath(cfg.socket),
		xdgPodman(getenv))...)

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.http, err = parseHTTP(*httpAddr, *httpTokenFile, getenv("PODMAN_WORKER_HTTP_TOKEN"), *httpMaxBody, *httpCORS, *httpHeaderTimeout, set); err != nil {
		return nil, err
	}
	if cfg.metrics, err = promexport.ParseConfig(*metricsAddr, *metricsTokenFile, getenv("PODMAN_WORKER_METRICS_TOKEN"), cfg.http.token); err != nil {
		return nil, err
	}
	// The worker's own files are never mounted either: its tokens, the
	// Podman config it points Podman at, and the file its log goes to.
	own := []string{*httpTokenFile, *metricsTokenFile, getenv("CONTAINERS_CONF"), cfg.registries.AuthFile}
	if target, err := os.Readlink("/proc/self/fd/2"); err == nil && filepath.IsAbs(target) {
		own = append(own, target)
	}
	cfg.policy.NeverMount = limits.NeverMountPaths(append(cfg.policy.NeverMount, own...)...)
	if cfg.http.addr != "" && len(cfg.cliArgs) > 0 {
		return nil, fmt.Errorf("--http serves the API and a COMMAND runs one call: give one or the other, not both (command %q)", cfg.cliArgs[0])
	}

	level := strings.ToLower(*logLevel)
	if *debug || isTrue(getenv("DEBUG")) {
		level = "debug"
	}
	cfg.logLevel, err = zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return nil, fmt.Errorf("--log-level / LOG_LEVEL: %q must be one of debug, info, warn, error", *logLevel)
	}
	return cfg, nil
}

// parseHTTP reads the HTTP API's settings. Without an address the API is
// off, and its flags (given on the command line) are refused as a mistake;
// their environment variables are ignored.
func parseHTTP(addr, tokenFile, envToken, maxBody, cors, headerTimeout string, set map[string]bool) (httpConfig, error) {
	var c httpConfig
	if addr == "" {
		for _, name := range []string{"http-token-file", "http-max-body", "http-cors-origins", "http-header-timeout"} {
			if set[name] {
				return c, fmt.Errorf("--%s applies to the HTTP API: give --http ADDR (or PODMAN_WORKER_HTTP) too", name)
			}
		}
		return c, nil
	}
	loopback, err := httpapi.CheckAddr(addr)
	if err != nil {
		return c, fmt.Errorf("--http / PODMAN_WORKER_HTTP: %v", err)
	}
	c.addr = addr
	switch {
	case tokenFile != "":
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return c, fmt.Errorf("--http-token-file / PODMAN_WORKER_HTTP_TOKEN_FILE: %v", err)
		}
		c.token = strings.TrimSpace(string(data))
		if err := httpapi.CheckToken(c.token); err != nil {
			return c, fmt.Errorf("--http-token-file / PODMAN_WORKER_HTTP_TOKEN_FILE: %s: %v", tokenFile, err)
		}
	case envToken != "":
		c.token = strings.TrimSpace(envToken)
		if err := httpapi.CheckToken(c.token); err != nil {
			return c, fmt.Errorf("PODMAN_WORKER_HTTP_TOKEN: %v", err)
		}
	}
	if !loopback && c.token == "" {
		return c, fmt.Errorf("--http / PODMAN_WORKER_HTTP: %q listens beyond this machine, so the worker needs a bearer token: "+
			"give --http-token-file FILE or PODMAN_WORKER_HTTP_TOKEN, or listen on 127.0.0.1", addr)
	}
	if c.maxBody, err = limits.ParseBytes(maxBody); err != nil || c.maxBody < 1024 || c.maxBody > 1<<30 {
		return c, fmt.Errorf("--http-max-body / PODMAN_WORKER_HTTP_MAX_BODY: %q must be a size from 1k to 1g such as 16m", maxBody)
	}
	if c.corsOrigins, err = httpapi.ParseOrigins(cors); err != nil {
		return c, fmt.Errorf("--http-cors-origins / PODMAN_WORKER_HTTP_CORS_ORIGINS: %v", err)
	}
	if c.token == "" && slices.Contains(c.corsOrigins, "*") {
		// A browser sends no credentials a page cannot forge here: with
		// no token, any web page the operator visits could create
		// containers and exec in them.
		return c, fmt.Errorf("--http-cors-origins / PODMAN_WORKER_HTTP_CORS_ORIGINS: * without a bearer token lets any web page run containers: " +
			"give --http-token-file FILE or PODMAN_WORKER_HTTP_TOKEN, or name the origins that may call")
	}
	if c.headerTimeout, err = parseSeconds(headerTimeout); err != nil || c.headerTimeout <= 0 {
		return c, fmt.Errorf("--http-header-timeout / PODMAN_WORKER_HTTP_HEADER_TIMEOUT: %q must be a positive duration such as 10s", headerTimeout)
	}
	return c, nil
}

var ownerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// connectionFlag is one --connection NAME=URI[,IDENTITY].
type connectionFlag struct {
	name, uri, identity string
}

// connectionFlags collects the repeated --connection flag.
type connectionFlags []connectionFlag

func (c *connectionFlags) String() string {
	var out []string
	for _, f := range *c {
		out = append(out, f.name+"="+f.uri)
	}
	return strings.Join(out, " ")
}

func (c *connectionFlags) Set(v string) error {
	name, rest, _ := strings.Cut(v, "=")
	uri, identity, _ := strings.Cut(rest, ",")
	if !ownerPattern.MatchString(name) || uri == "" {
		return fmt.Errorf("%q must be NAME=URI or NAME=URI,IDENTITY, such as build2=ssh://core@build2/run/podman/podman.sock,/etc/podman-worker/id_ed25519; NAME is 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit", v)
	}
	for _, f := range *c {
		if f.name == name {
			return fmt.Errorf("%q: a connection is already named %s", v, name)
		}
	}
	*c = append(*c, connectionFlag{name: name, uri: uri, identity: identity})
	return nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func isTrue(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}

// parsePolicy reads the ceilings an operator sets on what callers may ask for.
func parsePolicy(memory, cpus, timeout, pids, networks string) (limits.Policy, error) {
	var p limits.Policy
	var err error
	if p.MaxMemory, err = limits.ParseBytes(memory); err != nil || p.MaxMemory < 6<<20 {
		return p, fmt.Errorf("--max-memory / MAX_MEMORY: %q must be a size of at least 6m such as 1g", memory)
	}
	if p.MaxCPUs, err = strconv.ParseFloat(cpus, 64); err != nil || !(p.MaxCPUs >= 0.01) || p.MaxCPUs > 1024 {
		return p, fmt.Errorf("--max-cpus / MAX_CPUS: %q must be a number of cores such as 2", cpus)
	}
	if p.MaxTimeout, err = time.ParseDuration(timeout); err != nil || p.MaxTimeout <= 0 {
		return p, fmt.Errorf("--max-timeout / MAX_TIMEOUT: %q must be a positive duration such as 10m", timeout)
	}
	if p.MaxPids, err = strconv.ParseInt(pids, 10, 64); err != nil || p.MaxPids < 1 {
		return p, fmt.Errorf("--max-pids / MAX_PIDS: %q must be a whole number of at least 1", pids)
	}
	if p.NetworkModes, err = limits.ParseNetworkModes(networks); err != nil {
		return p, fmt.Errorf("--network-modes / NETWORK_MODES: %v", err)
	}
	return p, nil
}

type sandboxFlags struct {
	maxSwap, allowCaps, portAddrs, mountRoots, buildRoots, maxContext, maxBuildTimeout, maxLog, userns string
}

// parseSandbox reads the settings that widen the sandbox, each from its
// closed default.
func parseSandbox(p *limits.Policy, f sandboxFlags) error {
	var err error
	p.MaxMemorySwap = p.MaxMemory
	if f.maxSwap != "" {
		if p.MaxMemorySwap, err = limits.ParseBytes(f.maxSwap); err != nil || p.MaxMemorySwap < p.MaxMemory {
			return fmt.Errorf("--max-memory-swap / MAX_MEMORY_SWAP: %q must be a size of at least --max-memory (%s)", f.maxSwap, limits.FormatBytes(p.MaxMemory))
		}
	}
	if p.AllowCaps, err = limits.ParseCaps(f.allowCaps); err != nil {
		return fmt.Errorf("--allow-caps / ALLOW_CAPS: %v", err)
	}
	if p.PortAddresses, err = limits.ParsePortAddresses(f.portAddrs); err != nil {
		return fmt.Errorf("--port-addresses / PORT_ADDRESSES: %v", err)
	}
	if p.MountRoots, err = limits.ParseRoots(f.mountRoots); err != nil {
		return fmt.Errorf("--mount-roots / MOUNT_ROOTS: %v", err)
	}
	if p.BuildRoots, err = limits.ParseRoots(f.buildRoots); err != nil {
		return fmt.Errorf("--build-roots / BUILD_ROOTS: %v", err)
	}
	if p.MaxBuildContext, err = limits.ParseBytes(f.maxContext); err != nil {
		return fmt.Errorf("--max-build-context / MAX_BUILD_CONTEXT: %q must be a size such as 256m", f.maxContext)
	}
	if p.MaxBuildTimeout, err = time.ParseDuration(f.maxBuildTimeout); err != nil || p.MaxBuildTimeout <= 0 {
		return fmt.Errorf("--max-build-timeout / MAX_BUILD_TIMEOUT: %q must be a positive duration such as 30m", f.maxBuildTimeout)
	}
	// Podman's conmon needs a few KiB to write a line at all.
	if p.MaxLogBytes, err = limits.ParseBytes(f.maxLog); err != nil || p.MaxLogBytes < 64<<10 {
		return fmt.Errorf("--max-log-bytes / MAX_LOG_BYTES: %q must be a size of at least 64k such as 10m", f.maxLog)
	}
	if p.UserNS, err = limits.ValidUserNS(f.userns); err != nil {
		return fmt.Errorf("--userns / USERNS: %v", err)
	}
	return nil
}

// defaultRunner is podman-worker-runner in the worker's own folder, where
// make build puts it.
func defaultRunner() string {
	exe, err := os.Executable()
	if err != nil {
		return "podman-worker-runner"
	}
	return filepath.Join(filepath.Dir(exe), "podman-worker-runner")
}

// socketPath is the file of a unix socket URI or path, "" for ssh and tcp.
func socketPath(uri string) string {
	p, _ := podman.SocketPath(uri)
	return p
}

// xdgPodman is the rootless Podman's socket folder, when there is one.
func xdgPodman(getenv func(string) string) string {
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "podman")
	}
	return ""
}

// parseSeconds reads a duration such as "30s", or plain seconds as the
// seed's REQUEST_TIMEOUT=30 wrote it.
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// defaultRoot is where an embedded service keeps its images between runs.
func defaultRoot(getenv func(string) string) string {
	if os.Geteuid() == 0 {
		return "/var/lib/podman-worker"
	}
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return d + "/podman-worker"
	}
	return getenv("HOME") + "/.local/share/podman-worker"
}
