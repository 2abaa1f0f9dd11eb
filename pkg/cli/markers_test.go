package cli_test

import (
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

// A file with Flux setter markers pins its marked fields alone: a deploy
// pins the marked image, and an image that the file names only in an
// unmarked field is "not referenced", with the reason, and is not pinned
// behind the markers' back through the kustomization's images list.
func TestDeploySetterMarkers(t *testing.T) {
	reg := testreg.Start(t, nil)
	webDigest := reg.Push(t, "team/web:v2")
	reg.Push(t, "team/sidecar:v2")
	seed := seedTree(t, reg.Host, map[string]string{
		"apps/web/kustomization.yaml": "resources:\n- deployment.yaml\n",
		"apps/web/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: REGISTRY/team/web:v1 # {"$imagepolicy": "flux-system:web"}
        - name: sidecar
          image: REGISTRY/team/sidecar:v1
`,
	})
	repo := testgit.NewRepo(t, seed, "candidate")
	srv := testgit.Serve(t, repo)
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}

	mustRun(t, env, "deploy", "--env", "candidate", "--path", "apps/web", "--image", reg.Host+"/team/web:v2")
	got := repo.Show("candidate", "apps/web/deployment.yaml")
	if !strings.Contains(got, "image: "+reg.Host+"/team/web:v2@"+webDigest+` # {"$imagepolicy": "flux-system:web"}`) ||
		!strings.HasSuffix(strings.TrimSpace(got), "image: "+reg.Host+"/team/sidecar:v1") {
		t.Errorf("deployment.yaml after the deploy:\n%s", got)
	}

	tip := repo.Tip("candidate")
	code, _, errOut := run(t, env, "deploy", "--env", "candidate", "--path", "apps/web", "--image", reg.Host+"/team/sidecar:v2")
	if code != 1 || !strings.Contains(errOut, "not referenced") || !strings.Contains(errOut, "apps/web/deployment.yaml:16 refers to "+reg.Host+"/team/sidecar but is not marked") {
		t.Errorf("an unmarked image in a marked file: exit %d\n%s", code, errOut)
	}
	if repo.Tip("candidate") != tip {
		t.Error("the branch moved")
	}
	repo.Fsck()
}
