package manifest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const layoutsDir = "../../testdata/layouts"

// reachTarget is a target for a repository of a layout: tag v9 and a digest
// made from the name.
func reachTarget(repo, policy string) Target {
	return Target{Repo: repo, Tag: "v9", Digest: fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(repo))), Policy: policy}
}

// The real env-repo layouts of testdata/layouts that issue 11 items 3, 4
// and 6 are about (setter markers, workload kinds, image volumes,
// configurations, placeholders), pinned at their CASE's path with their
// CASE's images: which files change, which stay, and every changed line
// holds a pinned value; a second pin changes nothing.
func TestLayoutsReach(t *testing.T) {
	for _, tc := range []struct {
		layout, path string
		targets      []Target
		changed      []string // the files that change, all others stay
		err          string   // instead: Pin's error
	}{
		{"setters-flux-docs", ".", []Target{reachTarget("ghcr.io/stefanprodan/podinfo", ""), reachTarget("docker.io/golang", "")}, []string{
			"deployment-latest-digest.yaml", "flux-kustomization.yaml", "helmrelease-latest-digest.yaml", "helmrelease.yaml",
			// kustomize/deployment.yaml has no marker: a file without one is pinned as any manifest.
			"kustomize/deployment.yaml", "kustomize/kustomization.yaml", "tekton-task.yaml",
		}, ""},
		// auto.yaml's ImageRepository spec.image is a repository to scan, no image field.
		{"setters-flux2-e2e", ".", []Target{reachTarget("ghcr.io/stefanprodan/podinfo", "")}, []string{"deployment.yaml", "kustomization.yaml"}, ""},
		// image comes with the policy of Flux's own test, so the kustomizations'
		// :name fields are renamed to it and marked.yaml's container d (another
		// policy) stays; user is matched by repository; unmarked.yaml has no
		// marker, so it is pinned as any manifest (the CASE's "--setters-only"
		// is a tree-wide mode ferry does not have).
		{"setters-iac-testdata", ".", []Target{reachTarget("image", "automation-ns:policy"), reachTarget("user", "")}, []string{
			"Kustomization", "kustomization.yml", "marked.yaml", "otherns.yaml", "unmarked.yaml",
		}, ""},
		// crd-image only through kustomizeconfig/mykind.yaml; the images
		// entries rename, so they are not the images'.
		{"configurations-kustomize-mykind", ".", []Target{reachTarget("crd-image", ""), reachTarget("docker", ""), reachTarget("my-mysql", ""), reachTarget("my-app", ""), reachTarget("alpine", "")},
			[]string{"resources.yaml"}, ""},
		{"configurations-rollout-transform", "example", []Target{reachTarget("argoproj/rollouts-demo", "")}, nil,
			`example/kustomization.yaml: configurations entry "../rollout-transform.yaml" is not a file in the kustomization's directory or below, which kustomize refuses too`},
		{"keda-scaledjob", ".", []Target{reachTarget("tsuyoshiushio/rabbitmq-client", "")}, []string{"deploy-consumer-job.yaml"}, ""},
		{"knative-service", ".", []Target{reachTarget("docker.io/savita3020/servingcontainer", ""), reachTarget("docker.io/savita3020/sidecarcontainer", "")}, []string{"service.yaml"}, ""},
		{"kruise-cloneset", ".", []Target{reachTarget("openkruise/guestbook", "")},
			[]string{"broadcastjob.yaml", "cloneset-guestbook.yaml", "guestbook-sidecar.yaml", "uniteddeployment.yaml"}, ""},
		{"pod-ephemeral-containers", ".", []Target{reachTarget("dummyimagename", ""), reachTarget("asdfeasdfasada", ""), reachTarget("fjtyonaq", ""), reachTarget("sjbonmqopcta", "")},
			[]string{"good-pods-all.yaml", "resource.yaml"}, ""},
		{"pod-image-volume", ".", []Target{reachTarget("debian", ""), reachTarget("alpine", "")}, []string{"image-volumes.yaml"}, ""},
		{"pod-image-volume-flow", ".", []Target{reachTarget("debian", ""), reachTarget("quay.io/crio/artifact", "")}, []string{"image-volumes-subpath.yaml", "image-volumes.yaml"}, ""},
		{"rollout-canary-demo", "canary", []Target{reachTarget("argoproj/rollouts-demo", "")}, []string{"canary/canary-rollout.yaml"}, ""},
		{"rollout-experiment-demo", ".", []Target{reachTarget("argoproj/rollouts-demo", ""), reachTarget("argoproj/load-tester", "")},
			[]string{"experiment.yaml", "http-benchmark.yaml"}, ""},
		{"placeholder-kustomize-braces", ".", []Target{reachTarget("some.registry.io/my-image", "")}, []string{"deployment.yaml"}, ""},
		// skaffold.yaml's build artifacts are names to build, no image fields.
		{"placeholder-skaffold-grpc", ".", []Target{reachTarget("echo-grpc", ""), reachTarget("reverse-grpc", ""), reachTarget("envoyproxy/envoy", "")},
			[]string{"echo-grpc/k8s/echo-deployment.yaml", "envoy/k8s/envoy-deployment.yaml", "reverse-grpc/k8s/reverse-deployment.yaml"}, ""},
		// A placeholder in the repository names no image: not referenced.
		{"placeholder-gke-samples", ".", []Target{reachTarget("us-central1-docker.pkg.dev/acme/adk-repo/adk-agent", "")}, nil,
			"image not referenced under .: us-central1-docker.pkg.dev/acme/adk-repo/adk-agent"},
		{"placeholder-knative-samples", ".", []Target{reachTarget("docker.io/acme/helloworld-python", "")}, nil,
			"image not referenced under .: docker.io/acme/helloworld-python"},
		// kubernetes.yaml.tpl is no manifest (sed fills it in).
		{"placeholder-cloudbuild-tpl", ".", []Target{reachTarget("us-central1-docker.pkg.dev/acme/my-repository/hello-cloudbuild", "")}, nil,
			"image not referenced"},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			fsys := os.DirFS(layoutsDir + "/" + tc.layout)
			res, err := Pin(fsys, tc.path, tc.targets)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Pin = %v; want an error containing %q", err, tc.err)
				}
				if strings.HasPrefix(tc.err, "image not") && !errors.Is(err, ErrNotReferenced) {
					t.Errorf("Pin = %v; want ErrNotReferenced", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.changed, slices.Sorted(maps.Keys(res.Files))); diff != "" {
				t.Errorf("files changed (-want +got):\n%s", diff)
			}
			after := fstest.MapFS{}
			if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				data, err := fs.ReadFile(fsys, p)
				after[p] = &fstest.MapFile{Data: data}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for p, data := range res.Files {
				before := after[p].Data
				checkChangedLines(t, before, data, tc.targets)
				// A rewrite keeps a missing end of line at the end of the
				// file, and a trailing "---".
				if bytes.HasSuffix(before, []byte("\n---\n")) != bytes.HasSuffix(data, []byte("\n---\n")) ||
					bytes.HasSuffix(before, []byte("\n")) != bytes.HasSuffix(data, []byte("\n")) {
					t.Errorf("%s: the end of the file changed", p)
				}
				after[p] = &fstest.MapFile{Data: data}
			}
			again, err := Pin(after, tc.path, tc.targets)
			if err != nil {
				t.Fatalf("second pin: %v", err)
			}
			if len(again.Files) > 0 || slices.ContainsFunc(again.Changes, func(c Change) bool { return c.Old != c.New }) {
				t.Errorf("a second pin changes %v", slices.Sorted(maps.Keys(again.Files)))
			}
		})
	}
}
