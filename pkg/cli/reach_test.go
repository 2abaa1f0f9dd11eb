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

// Each layout the reach issue names, deployed end to end through
// git http-backend: the files change byte-exactly where the image lives,
// the report names them, and the same deploy again is a no-op.
func TestDeployReach(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		scope string
		// want maps each file to a fragment it must hold after the deploy
		// (TAG and DIGEST replaced), and unchanged lists files that must
		// keep their bytes.
		want      map[string]string
		unchanged []string
		extra     []string // more deploy flags
		// twoRefs: the scope runs the image at two references afterwards,
		// and history shows one image per repository.
		twoRefs bool
	}{
		{
			name:  "helm values beside a chart with templates",
			scope: "charts/hello",
			files: map[string]string{
				"charts/hello/Chart.yaml":                "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
				"charts/hello/values.yaml":               "replicaCount: 1\nimage:\n  repository: REGISTRY/team/hello # the app\n  tag: v1\n  pullPolicy: IfNotPresent\n",
				"charts/hello/templates/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n{{- with .Values.nodeSelector }}\n      nodeSelector: {{ toYaml . | nindent 8 }}\n{{- end }}\n",
			},
			want:      map[string]string{"charts/hello/values.yaml": "  repository: REGISTRY/team/hello # the app\n  tag: TAG@DIGEST\n  pullPolicy: IfNotPresent\n"},
			unchanged: []string{"charts/hello/templates/deployment.yaml", "charts/hello/Chart.yaml"},
		},
		{
			name:  "Flux setter markers: only marked fields change",
			scope: "apps/hello",
			files: map[string]string{
				"apps/hello/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  template:\n    spec:\n      containers:\n        - name: hello\n          image: REGISTRY/team/hello:v1 # {\"$imagepolicy\": \"flux-system:hello\"}\n        - name: pinned-by-hand\n          image: REGISTRY/team/hello:v0\n",
			},
			want: map[string]string{"apps/hello/deployment.yaml": "image: REGISTRY/team/hello:TAG@DIGEST # {\"$imagepolicy\": \"flux-system:hello\"}\n        - name: pinned-by-hand\n          image: REGISTRY/team/hello:v0\n"},
		},
		{
			name:  "Flux setter markers with --policy: only that policy's fields change",
			scope: "apps/hello",
			files: map[string]string{
				"apps/hello/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  template:\n    spec:\n      containers:\n        - name: hello\n          image: REGISTRY/team/hello:v1 # {\"$imagepolicy\": \"flux-system:hello\"}\n        - name: canary\n          image: REGISTRY/team/hello:v1 # {\"$imagepolicy\": \"flux-system:hello-canary\"}\n",
			},
			want:    map[string]string{"apps/hello/deployment.yaml": "image: REGISTRY/team/hello:TAG@DIGEST # {\"$imagepolicy\": \"flux-system:hello\"}\n        - name: canary\n          image: REGISTRY/team/hello:v1 # {\"$imagepolicy\": \"flux-system:hello-canary\"}\n"},
			extra:   []string{"--policy", "flux-system:hello"},
			twoRefs: true,
		},
		{
			name:  "an Argo Rollout",
			scope: "apps/hello",
			files: map[string]string{
				"apps/hello/rollout.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: hello\nspec:\n  strategy:\n    canary:\n      steps:\n      - setWeight: 20\n  template:\n    spec:\n      containers:\n      - name: hello\n        image: REGISTRY/team/hello:v1\n",
			},
			want: map[string]string{"apps/hello/rollout.yaml": "        image: REGISTRY/team/hello:TAG@DIGEST\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := testreg.Start(t, nil)
			digest := reg.Push(t, "team/hello:v2")
			repo := testgit.NewRepo(t, seedTree(t, reg.Host, tc.files), "production")
			srv := testgit.Serve(t, repo)
			env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}
			before := map[string]string{}
			for _, f := range tc.unchanged {
				before[f] = repo.Show("production", f)
			}
			args := append([]string{"deploy", "--env", "production", "--path", tc.scope, "--image", reg.Host + "/team/hello:v2", "--output", "json"}, tc.extra...)
			var rep struct{ Changed bool }
			if err := json.Unmarshal([]byte(mustRun(t, env, args...)), &rep); err != nil || !rep.Changed {
				t.Fatalf("deploy: %+v, %v", rep, err)
			}
			for f, frag := range tc.want {
				frag = strings.NewReplacer("REGISTRY", reg.Host, "TAG", "v2", "DIGEST", digest).Replace(frag)
				if got := repo.Show("production", f); !strings.Contains(got+"\n", frag) {
					t.Errorf("%s:\n%s\nlacks:\n%s", f, got, frag)
				}
			}
			for f, b := range before {
				if repo.Show("production", f) != b {
					t.Errorf("%s changed", f)
				}
			}
			repo.Fsck()
			// history reads the image from wherever it lives.
			var hist []struct {
				Images []struct{ Name, Digest string }
			}
			if err := json.Unmarshal([]byte(mustRun(t, env, "history", "--env", "production", "--path", tc.scope, "--output", "json", "--limit", "1")), &hist); err != nil || len(hist) != 1 {
				t.Fatalf("history: %v", err)
			}
			found := false
			for _, im := range hist[0].Images {
				found = found || im.Name == reg.Host+"/team/hello" && im.Digest == digest
			}
			if !found && !tc.twoRefs {
				t.Errorf("history does not show %s/team/hello@%s: %+v", reg.Host, digest, hist[0].Images)
			}
			tip := repo.Tip("production")
			if err := json.Unmarshal([]byte(mustRun(t, env, args...)), &rep); err != nil || rep.Changed || repo.Tip("production") != tip {
				t.Errorf("the same deploy again changed something: %+v, %v", rep, err)
			}
		})
	}
}

// Promote carries a values file like any other, and diff shows the image
// change it holds.
func TestPromoteHelmValues(t *testing.T) {
	reg := testreg.Start(t, nil)
	digest := reg.Push(t, "team/hello:v2")
	seed := seedTree(t, reg.Host, map[string]string{
		"charts/hello/Chart.yaml":                "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
		"charts/hello/values.yaml":               "image:\n  registry: REGISTRY\n  repository: team/hello\n  tag: v1\n  digest: \"\"\n",
		"charts/hello/templates/deployment.yaml": "image: {{ .Values.image.registry }}/{{ .Values.image.repository }}\n",
	})
	repo := testgit.NewRepo(t, seed, "candidate", "production")
	srv := testgit.Serve(t, repo)
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}
	mustRun(t, env, "deploy", "--env", "candidate", "--path", "charts/hello", "--image", reg.Host+"/team/hello:v2")
	if got := repo.Show("candidate", "charts/hello/values.yaml"); !strings.Contains(got, "  tag: v2\n  digest: \""+digest+"\"") {
		t.Errorf("values.yaml on candidate:\n%s", got)
	}
	out := mustRun(t, env, "diff", "--from", "candidate", "--to", "production", "--path", "charts/hello")
	if !strings.Contains(out, reg.Host+"/team/hello") || !strings.Contains(out, "v1 -> v2@"+digest[:len("sha256:")+12]) {
		t.Errorf("diff does not show the image change:\n%s", out)
	}
	mustRun(t, env, "promote", "--from", "candidate", "--to", "production", "--path", "charts/hello")
	if repo.Show("production", "charts/hello/values.yaml") != repo.Show("candidate", "charts/hello/values.yaml") {
		t.Error("promote did not carry values.yaml")
	}
}
