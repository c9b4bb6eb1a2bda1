package app

import (
	"context"
	"encoding/json"
	"gatehouse/internal/testutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerStage is one stage of a Dockerfile: its instructions by keyword.
type dockerStage struct {
	from string
	ins  map[string][]string
}

// parseDockerfile reads the stages of a Dockerfile, joining continued lines.
func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(b), " ")
	var stages []dockerStage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			stages = append(stages, dockerStage{from: rest, ins: map[string][]string{}})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", path, kw)
		}
		s := &stages[len(stages)-1]
		s.ins[kw] = append(s.ins[kw], strings.TrimSpace(rest))
	}
	return stages
}

// jsonArgs decodes an exec-form instruction (["a", "b"]).
func jsonArgs(t *testing.T, what, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		t.Fatalf("%s is not in exec form (a JSON array): %s", what, s)
	}
	return args
}

// TestDockerfileRunsAsDescribed checks the image's promises without Docker:
// a static build, a distroless non-root final stage with a data volume,
// and that its environment, command and HEALTHCHECK, run as written
// against the real binary, give a server the health check calls healthy.
func TestDockerfileRunsAsDescribed(t *testing.T) {
	stages := parseDockerfile(t, "../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a final stage, got %d stages", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.Contains(strings.Join(build.ins["RUN"], "\n"), "CGO_ENABLED=0 go build -trimpath") {
		t.Errorf("the build stage does not build the static binary the README describes: %v", build.ins["RUN"])
	}
	if !strings.Contains(final.from, "distroless/static") && !strings.HasPrefix(final.from, "scratch") {
		t.Errorf("final stage is %q, want distroless static or scratch", final.from)
	}
	if users := final.ins["USER"]; len(users) != 1 || strings.HasPrefix(users[0], "0") || strings.HasPrefix(users[0], "root") {
		t.Errorf("final stage USER %v, want one non-root user", users)
	}
	env := map[string]string{}
	for _, e := range final.ins["ENV"] {
		for _, kv := range strings.Fields(e) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("ENV %q: use KEY=value", e)
			}
			env[k] = v
		}
	}
	if vol := strings.Join(final.ins["VOLUME"], " "); env["GATEHOUSE_DATA"] == "" || !strings.Contains(vol, `"`+env["GATEHOUSE_DATA"]+`"`) {
		t.Errorf("GATEHOUSE_DATA=%q is not a VOLUME (%s)", env["GATEHOUSE_DATA"], vol)
	}
	if len(final.ins["HEALTHCHECK"]) != 1 {
		t.Fatalf("want one HEALTHCHECK, got %v", final.ins["HEALTHCHECK"])
	}
	hc := final.ins["HEALTHCHECK"][0]
	health := jsonArgs(t, "HEALTHCHECK CMD", hc[strings.Index(hc, "CMD ")+4:])
	entry := jsonArgs(t, "ENTRYPOINT", final.ins["ENTRYPOINT"][0])
	cmd := jsonArgs(t, "CMD", final.ins["CMD"][0])

	// Run them: the image's paths become the test's.
	bin := buildGatehouse(t)
	image := map[string]string{entry[0]: bin, env["GATEHOUSE_DATA"]: filepath.Join(t.TempDir(), "data")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	var procEnv []string
	for k, v := range env {
		if k == "GATEHOUSE_ADDR" {
			host, _, err := net.SplitHostPort(v)
			if err != nil {
				t.Fatalf("GATEHOUSE_ADDR=%q: %v", v, err)
			}
			if host != "0.0.0.0" && host != "" {
				t.Errorf("GATEHOUSE_ADDR=%q: in a container the server must listen on every interface", v)
			}
			v = "127.0.0.1:" + port // the test's own free port, on loopback
		}
		if p, ok := image[v]; ok {
			v = p
		}
		procEnv = append(procEnv, k+"="+v)
	}
	procEnv = append(cleanEnv(), procEnv...)
	run := func(args []string) *exec.Cmd {
		c := exec.Command(image[args[0]], args[1:]...)
		if image[args[0]] == "" {
			t.Fatalf("%s is not the ENTRYPOINT's binary %s", args[0], entry[0])
		}
		c.Env = procEnv
		return c
	}

	healthy := func() (bool, string) {
		out, err := run(health).CombinedOutput()
		return err == nil, string(out)
	}
	if ok, _ := healthy(); ok {
		t.Fatal("the health check passes with no server running")
	}
	server := run(append(append([]string{}, entry...), cmd...))
	logs := &testutil.LockedBuffer{}
	server.Stderr, server.Stdout = logs, logs
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		server.Process.Kill()
		server.Wait()
	}()
	var out string
	ok := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(100 * time.Millisecond) {
		ok, out = healthy()
	}
	if !ok {
		t.Fatalf("the HEALTHCHECK never passed: %s\nserver log:\n%s", out, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"gatehouse listening"`) {
		t.Errorf("the container logs are not JSON: %s", logs.String())
	}
	if st, err := os.Stat(filepath.Join(image[env["GATEHOUSE_DATA"]], "gatehouse.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the database in the volume: %v %v", st, err)
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on docs/gatehouse.service
// (with ExecStart pointing at a built binary) and checks its sandboxing.
func TestSystemdUnitVerifies(t *testing.T) {
	b, err := os.ReadFile("../docs/gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=gatehouse", "StateDirectoryMode=0700", "ProtectSystem=strict",
		"NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "ExecStart=/usr/local/bin/gatehouse serve", "GATEHOUSE_DATA=/var/lib/gatehouse"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (CI installs the systemd package)")
		}
		t.Skip("systemd-analyze not installed: skipping the unit check")
	}
	bin := buildGatehouse(t)
	path := filepath.Join(t.TempDir(), "gatehouse.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/gatehouse", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
