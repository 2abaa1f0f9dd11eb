package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

// seedTree writes files (path -> content, REGISTRY replaced by host) into a
// new directory for testgit.NewRepo.
func seedTree(t *testing.T, host string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(strings.ReplaceAll(c, "REGISTRY", host)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The image lives in a base outside --path: the deploy adds an entry to
// the overlay's images list, leaves the base alone, validates by building
// the overlay, and is a no-op when run again.
func TestDeployBaseOutsideScope(t *testing.T) {
	reg := testreg.Start(t, nil)
	digest := reg.Push(t, "team/hello:v2")
	seed := seedTree(t, reg.Host, map[string]string{
		"base/kustomization.yaml": "resources:\n- deployment.yaml\n",
		"base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
        - name: hello
          image: REGISTRY/team/hello:v1 # set by the base
`,
		"overlays/prod/kustomization.yaml": "# production overlay\nresources:\n  - ../../base\nnamePrefix: prod-\n",
	})
	repo := testgit.NewRepo(t, seed, "production")
	srv := testgit.Serve(t, repo)
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}
	baseBefore := repo.Git("rev-parse", "production:base")

	args := []string{"deploy", "--env", "production", "--path", "overlays/prod", "--image", reg.Host + "/team/hello:v2", "--output", "json"}
	var rep struct {
		Changed bool
		Files   []string
	}
	if err := json.Unmarshal([]byte(mustRun(t, env, args...)), &rep); err != nil {
		t.Fatal(err)
	}
	want := "# production overlay\nresources:\n  - ../../base\nnamePrefix: prod-\nimages:\n  - name: " + reg.Host + "/team/hello\n    newTag: v2\n    digest: " + digest + "\n"
	if got := repo.Show("production", "overlays/prod/kustomization.yaml") + "\n"; got != want {
		t.Errorf("overlay kustomization:\n%s\nwant:\n%s", got, want)
	}
	if !rep.Changed || len(rep.Files) != 1 || rep.Files[0] != "overlays/prod/kustomization.yaml" {
		t.Errorf("report: %+v", rep)
	}
	if got := repo.Git("rev-parse", "production:base"); got != baseBefore {
		t.Error("the base changed")
	}
	repo.Fsck()

	tip := repo.Tip("production")
	if err := json.Unmarshal([]byte(mustRun(t, env, args...)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Changed || repo.Tip("production") != tip {
		t.Errorf("the second deploy changed something: %+v", rep)
	}

	// An image no file and no base holds is still "not referenced".
	reg.Push(t, "team/other:v1")
	code, _, errOut := run(t, env, "deploy", "--env", "production", "--path", "overlays/prod", "--image", reg.Host+"/team/other:v1")
	if code != 1 || !strings.Contains(errOut, "not referenced") {
		t.Errorf("an image nowhere: exit %d\n%s", code, errOut)
	}
}
