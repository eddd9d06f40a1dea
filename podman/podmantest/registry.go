package podmantest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// registryPath is Debian's CNCF distribution registry (package
// docker-registry), which `make deps` installs.
const registryPath = "/usr/bin/docker-registry"

// RegistryOptions choose what kind of registry StartRegistry runs.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a CA
	// the registry's folder holds (CA, CAFile); otherwise plain HTTP.
	TLS bool
	// Username and Password, when set, are the one account of an
	// htpasswd file (bcrypt, made here: no password on any command line).
	Username, Password string
}

// Registry is a private registry on 127.0.0.1 and a free port, with its
// own configuration, storage and log in a temp folder.
type Registry struct {
	Dir  string
	Addr string // 127.0.0.1:PORT, as image references name it
	// CAFile is the PEM of the CA that signed the TLS certificate.
	CAFile  string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// HaveRegistry says why no registry can run here ("" when one can).
func HaveRegistry() string {
	if _, err := os.Stat(registryPath); err != nil {
		return fmt.Sprintf("%s is missing (%v): run `make deps` or `apt-get install -y docker-registry`", registryPath, err)
	}
	return ""
}

// StartRegistry starts a registry and waits until it answers /v2/.
func StartRegistry(ctx context.Context, opts RegistryOptions) (*Registry, error) {
	if why := HaveRegistry(); why != "" {
		return nil, errors.New("podmantest: " + why)
	}
	dir, err := os.MkdirTemp("/tmp", "pw-registry-")
	if err != nil {
		return nil, err
	}
	r := &Registry{Dir: dir, LogPath: filepath.Join(dir, "registry.log")}
	fail := func(err error) (*Registry, error) {
		r.Stop()
		return nil, fmt.Errorf("podmantest: registry: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	r.Addr = "127.0.0.1:" + port
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), r.Addr)
	if opts.TLS {
		cert, key, ca, err := makeCert()
		if err != nil {
			return fail(err)
		}
		r.CAFile = filepath.Join(dir, "ca.crt")
		for name, data := range map[string][]byte{"ca.crt": ca, "cert.pem": cert, "key.pem": key} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				return fail(err)
			}
		}
		conf += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	}
	if opts.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.DefaultCost)
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return fail(err)
		}
		conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: podmantest\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return fail(err)
	}
	logf, err := os.Create(r.LogPath)
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	r.cmd = exec.Command(registryPath, "serve", confPath)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return fail(err)
	}
	r.done = make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: nil}}
	if opts.TLS {
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(r.CAFile)
		pool.AppendCertsFromPEM(ca)
		client.Transport = &http.Transport{TLSClientConfig: tlsConfig(pool)}
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(scheme + "://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 401 {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return fail(fmt.Errorf("exited: %s", tail(r.LogPath, 2048)))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("no answer on %s: %v; log: %s", r.Addr, err, tail(r.LogPath, 2048)))
		}
	}
}

// Log is what the registry logged so far.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.LogPath)
	return string(b)
}

// Stop ends the registry (by its own pid) and removes its folder.
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	_ = os.RemoveAll(r.Dir)
}

// TrustCA makes the service s trust the registry's CA, through the
// per-host certs.d folder Podman reads under the service's HOME (see
// StartWithHome).
func (r *Registry) TrustCA(s *Service) error {
	if s.home == "" {
		return errors.New("podmantest: TrustCA needs a service started with StartWithHome")
	}
	dir := filepath.Join(s.home, ".config", "containers", "certs.d", r.Addr)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := os.ReadFile(r.CAFile)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600)
}

// makeCert makes a CA and a certificate for 127.0.0.1 it signs.
func makeCert() (certPEM, keyPEM, caPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "podmantest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func tlsConfig(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }
