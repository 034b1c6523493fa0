package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Versions are the CometBFT versions the end-to-end tests run against.
var Versions = []string{"v0.34.33", "v0.37.15", "v0.38.17", "v1.0.1"}

// CacheDir returns the directory node binaries are cached in:
// $COSIGNER_TEST_CACHE, or $HOME/.cache/cosigner-test.
func CacheDir() (string, error) {
	if d := os.Getenv("COSIGNER_TEST_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the test cache: set COSIGNER_TEST_CACHE: %w", err)
	}
	return filepath.Join(home, ".cache", "cosigner-test"), nil
}

// CometBFT returns the path of the cometbft binary of version (for example
// "v0.38.17"), building it from the Go module proxy into the cache first if
// it is not there. Builds are serialised across test binaries with a file
// lock and land by rename, so a binary in the cache is always complete.
func CometBFT(t testing.TB, version string) string {
	t.Helper()
	bin, err := cometBFT(version)
	if err != nil {
		t.Fatalf("cometbft %s: %v", version, err)
	}
	return bin
}

// buildMu keeps this process to one node build at a time; the file lock
// does the same across processes.
var buildMu sync.Mutex

func cometBFT(version string) (string, error) {
	return cachedBinary("cometbft", version, func(tmp, out string) error {
		if strings.HasPrefix(version, "v0.34.") {
			return buildFromSource("github.com/cometbft/cometbft", version, "./cmd/cometbft", "cometbft", tmp, out)
		}
		return goCmd(tmp, []string{"GOBIN=" + out}, "install", "github.com/cometbft/cometbft/cmd/cometbft@"+version)
	})
}

// HorcruxVersion is the Horcrux release the migration tests run.
const HorcruxVersion = "v3.3.2"

// Horcrux returns the path of the horcrux binary of HorcruxVersion, built
// from the Go module proxy into the cache (horcrux-<version>/horcrux) like
// the node binaries. `go install ...@v3.3.2` fails on the module's
// deprecation lookup, so it builds ./cmd/horcrux inside a copy of the
// downloaded module, as for CometBFT v0.34.
func Horcrux(t testing.TB) string {
	t.Helper()
	bin, err := cachedBinary("horcrux", HorcruxVersion, func(tmp, out string) error {
		return buildFromSource("github.com/strangelove-ventures/horcrux/v3", HorcruxVersion, "./cmd/horcrux", "horcrux", tmp, out)
	})
	if err != nil {
		t.Fatalf("horcrux %s: %v", HorcruxVersion, err)
	}
	return bin
}

// cachedBinary returns the cached binary name of version
// (CacheDir()/name-version/name), calling build(tmp, out) to put it into
// out first if it is not there. Builds are serialised across test binaries
// with a file lock and land by rename, so a binary in the cache is always
// complete.
func cachedBinary(name, version string, build func(tmp, out string) error) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, name+"-"+version, name)
	if isExecutable(bin) {
		return bin, nil
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	// One lock for all versions: building two nodes at once on a small
	// machine helps nobody.
	unlock, err := flock(filepath.Join(cache, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // built by someone else while we waited
		return bin, nil
	}
	tmp, err := os.MkdirTemp(cache, ".build-"+name+"-"+version+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	if err := os.Mkdir(out, 0o755); err != nil {
		return "", err
	}
	if err := build(tmp, out); err != nil {
		return "", err
	}
	dir := filepath.Dir(bin)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(out, name), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// buildFromSource builds pkg of module@version into out/bin inside a
// writable copy of the downloaded module: for modules that cannot be
// go-installed by path and version (CometBFT v0.34.x declares the
// tendermint module path; Horcrux v3's deprecation notice fails the
// install).
func buildFromSource(module, version, pkg, bin, tmp, out string) error {
	var dl bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	cmd.Stdout = &dl
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(dl.Bytes(), &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download %s@%s: no module dir in %q", module, version, dl.String())
	}
	src := filepath.Join(tmp, "src")
	if err := copyTree(mod.Dir, src); err != nil {
		return fmt.Errorf("copy %s@%s source: %w", module, version, err)
	}
	return goCmd(src, nil, "build", "-o", filepath.Join(out, bin), pkg)
}

func goCmd(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off", "GOFLAGS="), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// copyTree copies a module directory (read-only in the module cache) into
// dst with user-writable permissions.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

func flock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// ModuleRoot returns the root of the cosigner module (the directory holding
// go.mod), found with `go env GOMOD` from the current directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the cosigner module")
	}
	return filepath.Dir(gomod), nil
}

// BuildCosigner builds ./cmd/cosigner of the module into dir and returns the
// binary's path. Test packages call it once from TestMain.
func BuildCosigner(dir string) (string, error) {
	return BuildCosignerOverlay(dir, nil)
}

// BuildCosignerOverlay builds ./cmd/cosigner into dir with extra files
// added to the module through `go build -overlay`: add maps a path
// relative to the module root (which must not exist) to the file to
// compile there. The product's sources are not touched; test hooks (a
// cheating dealer) live only in binaries built this way.
func BuildCosignerOverlay(dir string, add map[string]string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cosigner")
	args := []string{"build"}
	if len(add) > 0 {
		replace := map[string]string{}
		for rel, src := range add {
			abs, err := filepath.Abs(src)
			if err != nil {
				return "", err
			}
			replace[filepath.Join(root, rel)] = abs
		}
		data, err := json.Marshal(map[string]map[string]string{"Replace": replace})
		if err != nil {
			return "", err
		}
		overlay := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(overlay, data, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "-o", bin, "./cmd/cosigner")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/cosigner: %w\n%s", err, out.String())
	}
	return bin, nil
}
