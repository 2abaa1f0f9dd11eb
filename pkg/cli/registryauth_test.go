package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testdistribution"
	"github.com/ferrycd/ferry/internal/testgit"
)

// useDockerConfig points the docker keychain at dir for this test only.
// ggcr's keychain reads the process environment, not the getenv that run
// hands to the CLI, so these tests set it with t.Setenv and cannot run in
// parallel. Every other place the keychain looks is pointed at an empty
// directory, so a developer's own logins cannot leak in.
func useDockerConfig(t *testing.T, dir string) {
	t.Helper()
	empty := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("HOME", empty) // ~/.docker/config.json
	t.Setenv("XDG_CONFIG_HOME", empty)
	t.Setenv("XDG_RUNTIME_DIR", empty) // podman's containers/auth.json
	t.Setenv("REGISTRY_AUTH_FILE", "")
}

// TestRegistryAuth runs ferry against distribution's own registry with
// htpasswd auth: the credentials in DOCKER_CONFIG are used, and missing or
// wrong ones fail clearly without printing the password.
func TestRegistryAuth(t *testing.T) {
	reg := testdistribution.Start(t)
	digest := reg.Push(t, "team/hello:v1")
	image := reg.Host + "/team/hello:v1"
	const wrongPassword = "not-the-password-8d2f61c0"

	t.Run("resolve with credentials", func(t *testing.T) {
		useDockerConfig(t, reg.DockerConfig(t, reg.User, reg.Password))
		code, out, errOut := run(t, nil, "resolve", image)
		if want := reg.Host + "/team/hello@" + digest + "\n"; code != 0 || out != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, want)
		}
		if strings.Contains(out+errOut, reg.Password) {
			t.Errorf("password printed:\nstdout: %s\nstderr: %s", out, errOut)
		}
	})

	t.Run("resolve without credentials", func(t *testing.T) {
		useDockerConfig(t, t.TempDir()) // no config.json
		code, out, errOut := run(t, nil, "resolve", image)
		if code != 1 || out != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
		}
		for _, want := range []string{reg.Host, "missing", "401", "DOCKER_CONFIG", "config.json"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
	})

	t.Run("resolve with a wrong password", func(t *testing.T) {
		useDockerConfig(t, reg.DockerConfig(t, reg.User, wrongPassword))
		for _, output := range []string{"text", "json"} {
			code, out, errOut := run(t, nil, "resolve", image, "-v", "--output", output)
			if code != 1 {
				t.Errorf("--output %s: exit %d, want 1\nstdout: %s", output, code, out)
			}
			for _, want := range []string{reg.Host, "rejected", "401"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("--output %s: stderr lacks %q:\n%s", output, want, errOut)
				}
			}
			encoded := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + wrongPassword))
			for _, secret := range []string{wrongPassword, encoded} {
				if strings.Contains(out+errOut, secret) {
					t.Errorf("--output %s: credentials printed (%q):\nstdout: %s\nstderr: %s", output, secret, out, errOut)
				}
			}
		}
	})

	t.Run("deploy", func(t *testing.T) {
		useDockerConfig(t, reg.DockerConfig(t, reg.User, reg.Password))
		repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
		srv := testgit.Serve(t, repo)
		before := repo.Tip("candidate")
		code, out, errOut := run(t, map[string]string{"FERRY_REPO": srv.RepoURL(repo)},
			"deploy", "--env", "candidate", "--path", "apps/hello", "--image", image, "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s\nregistry log:\n%s", code, errOut, reg.Log())
		}
		var rep struct {
			Changed bool
			Commit  string
			Images  []struct{ Ref string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
		}
		after := repo.Tip("candidate")
		want := image + "@" + digest
		if !rep.Changed || rep.Commit != after || after == before || len(rep.Images) != 1 || rep.Images[0].Ref != want {
			t.Errorf("report %+v, tip %s -> %s; want the image %s", rep, before, after, want)
		}
		if got := repo.Git("log", "-1", "--format=%(trailers:key=Ferry-Image,valueonly)", "candidate"); got != want {
			t.Errorf("Ferry-Image trailer %q, want %q", got, want)
		}
		repo.Fsck()

		// Without credentials the deploy stops before anything is pushed.
		useDockerConfig(t, t.TempDir())
		repo2 := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
		srv2 := testgit.Serve(t, repo2)
		before = repo2.Tip("candidate")
		code, _, errOut = run(t, map[string]string{"FERRY_REPO": srv2.RepoURL(repo2)},
			"deploy", "--env", "candidate", "--path", "apps/hello", "--image", image)
		if code != 1 || !strings.Contains(errOut, "missing") {
			t.Errorf("deploy without credentials: exit %d, stderr %q; want 1 and credentials missing", code, errOut)
		}
		if got := repo2.Tip("candidate"); got != before {
			t.Errorf("remote moved %s -> %s although the image could not be resolved", before, got)
		}
	})
}
