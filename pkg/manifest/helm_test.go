package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// helmDir holds the Helm and Argo CD golden cases, each built from a public
// input named in its SOURCE file.
const helmDir = "../../testdata/helm"

var (
	bitnamiNginx = Target{Repo: "docker.io/bitnami/nginx", Tag: "1.29.2-debian-12-r0", Digest: digestNginx}
	podinfoChart = Target{Repo: "ghcr.io/stefanprodan/podinfo", Tag: "6.14.2", Digest: digestHello}
	podinfoRedis = Target{Repo: "docker.io/redis", Tag: "8.8.1", Digest: digestGAR}
	fluxRedis    = Target{Repo: "public.ecr.aws/docker/library/redis", Tag: "8.6.3", Digest: digestGAR}
	e2e          = Target{Repo: "quay.io/argoprojlabs/argocd-e2e-container", Tag: "0.2", Digest: digestHello}
	ingressNginx = Target{Repo: "k8s.gcr.io/ingress-nginx/controller", Tag: "v1.1.2", Digest: digestNginx}
	sealed       = Target{Repo: "docker.io/bitnami/sealed-secrets-controller", Tag: "0.30.1", Digest: digestGAR}
	argocd       = Target{Repo: "quay.io/argoproj/argocd", Tag: "v3.1.0", Digest: digestHello}
	dex          = Target{Repo: "ghcr.io/dexidp/dex", Tag: "v2.45.2", Digest: digestNginx}
	exporter     = Target{Repo: "ghcr.io/oliver006/redis_exporter", Tag: "v1.86.1", Digest: digestGAR}
	helloFloat   = Target{Repo: "127.0.0.1:5000/team/hello", Tag: "1.10", Digest: digestHello}
	flagBool     = Target{Repo: "127.0.0.1:5000/team/flag", Tag: "true", Digest: digestGAR}
	mirrorNginx  = Target{Repo: "mirror.example.com/bitnami/nginx", Tag: "1.29.2-debian-12-r0", Digest: digestNginx}
)

// helmCase is a directory under testdata/helm with an input.yaml.
// changes lists "line kind old" for every reference the rewrite reports.
type helmCase struct {
	dir     string
	file    string   // path given to RewriteFile
	values  bool     // read as a Helm values file (WithValuesFiles(file))
	fields  []string // WithImageFields
	targets []Target
	changes []string
}

var helmCases = []helmCase{
	{"bitnami-nginx", "charts/nginx/values.yaml", true, nil, []Target{bitnamiNginx}, []string{
		"32 helm-values docker.io/bitnami/nginx:1.29.1-debian-12-r0",
	}},
	{"podinfo-chart", "charts/podinfo/values.yaml", true, nil, []Target{podinfoChart, podinfoRedis}, []string{
		"10 helm-values ghcr.io/stefanprodan/podinfo:6.14.1",
		"28 helm-values docker.io/redis:8.8.0",
	}},
	{"helm-guestbook", "helm-guestbook/values.yaml", true, nil, []Target{e2e}, []string{
		"8 helm-values quay.io/argoprojlabs/argocd-e2e-container:0.1",
	}},
	{"argo-cd-chart", "argo-cd/values.yaml", true, nil, []Target{argocd, dex, exporter}, []string{
		"19 helm-values quay.io/argoproj/argocd",
		"35 helm-values ghcr.io/dexidp/dex:v2.45.1",
		"70 helm-values ghcr.io/oliver006/redis_exporter:v1.86.0",
		"90 helm-values ghcr.io/oliver006/redis_exporter:v1.75.0",
	}},
	{"numeric-tags", "values.yaml", true, nil, []Target{helloFloat, flagBool}, []string{
		"4 helm-values 127.0.0.1:5000/team/hello:1.9",
		"10 helm-values 127.0.0.1:5000/team/flag:false",
		"15 helm-values 127.0.0.1:5000/team/hello:1.9",
	}},
	{"image-fields", "envs/prod/values-prod.yaml", true, []string{"frontend.image", "sidecars[0].image"}, []Target{hello}, []string{
		"4 helm-values 127.0.0.1:5000/team/hello:v1",
		"9 helm-values 127.0.0.1:5000/team/hello:v1",
	}},
	{"global-registry", "values.yaml", true, []string{"image"}, []Target{mirrorNginx}, []string{
		"5 helm-values mirror.example.com/bitnami/nginx:1.29.1-debian-12-r0",
	}},
	{"flux-helmrelease", "apps/base/podinfo/release.yaml", false, nil, []Target{fluxRedis}, []string{
		"25 helm-values public.ecr.aws/docker/library/redis:8.6.2",
	}},
	{"argocd-values-object", "apps/ingress-nginx.yaml", false, nil, []Target{ingressNginx}, []string{
		"18 helm-values k8s.gcr.io/ingress-nginx/controller:v1.1.1@sha256:0bc88eb15f9e7f84e8e56c14fa5735aaa488b840983f87bd79b1054190e660de",
	}},
	{"argocd-values-string", "apps/sealed-secrets.yaml", false, nil, []Target{sealed}, []string{
		"17 helm-values docker.io/bitnami/sealed-secrets-controller:0.30.0",
	}},
	{"argocd-values-string-crlf", "apps/guestbook.yaml", false, nil, []Target{e2e}, []string{
		"13 helm-values quay.io/argoprojlabs/argocd-e2e-container",
	}},
	{"argocd-sources", "apps/ingress-nginx.yaml", false, nil, []Target{ingressNginx}, []string{
		"21 helm-parameter k8s.gcr.io/ingress-nginx/controller:v1.1.1",
	}},
	{"argocd-source-helm", "helm-guestbook/.argocd-source-test-app.yaml", false, nil, []Target{nginx}, []string{
		"6 helm-parameter nginx:1.23.1",
	}},
	{"argocd-source-kustomize", "apps/hello/.argocd-source-hello.yaml", false, nil, []Target{nginx, e2e}, []string{
		"4 argocd-kustomize docker.io/library/nginx:1.25",
		"5 argocd-kustomize quay.io/argoprojlabs/argocd-e2e-container:0.1",
	}},
}

func (tc helmCase) opts() []PinOption {
	var o []PinOption
	if tc.values {
		o = append(o, WithValuesFiles(tc.file))
	}
	if tc.fields != nil {
		o = append(o, WithImageFields(tc.fields...))
	}
	return o
}

// TestRewriteHelmGolden is TestRewriteGolden for Helm values and Argo CD
// sources: the output must equal golden.yaml, differ from the input only
// in lines holding a pinned value, and be left alone by a second pass.
func TestRewriteHelmGolden(t *testing.T) {
	for _, tc := range helmCases {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join(helmDir, tc.dir)
			input := readFile(t, filepath.Join(dir, "input.yaml"))
			readFile(t, filepath.Join(dir, "SOURCE")) // every input says where it comes from
			goldenPath := filepath.Join(dir, "golden.yaml")

			got, changes, err := RewriteFile(tc.file, input, tc.targets, tc.opts()...)
			if err != nil {
				t.Fatalf("RewriteFile: %v", err)
			}
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(string(readFile(t, goldenPath)), string(got)); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", goldenPath, diff)
			}
			var summary []string
			for _, c := range changes {
				summary = append(summary, fmt.Sprintf("%d %s %s", c.Line, c.Kind, c.Old))
				if c.File != tc.file {
					t.Errorf("change %+v: File = %q, want %q", c, c.File, tc.file)
				}
			}
			if diff := cmp.Diff(tc.changes, summary); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			checkValuesLines(t, input, got, tc.targets)

			again, changes2, err := RewriteFile(tc.file, got, tc.targets, tc.opts()...)
			if err != nil {
				t.Fatalf("second RewriteFile: %v", err)
			}
			if diff := cmp.Diff(string(got), string(again)); diff != "" {
				t.Errorf("second pass changed the output (-first +second):\n%s", diff)
			}
			if len(changes2) != len(changes) {
				t.Errorf("second pass found %d references, first found %d", len(changes2), len(changes))
			}
			for i, c := range changes2 {
				if c.Old != c.New {
					t.Errorf("second pass: %+v is not pinned", c)
				}
				if i < len(changes) && c.New != changes[i].New {
					t.Errorf("second pass: New = %q, first pass wrote %q", c.New, changes[i].New)
				}
			}
		})
	}
}

// checkValuesLines asserts, independently of the golden files, that output
// differs from input only in lines that hold a pinned value: every line
// removed names a tag, digest, image, parameter value or a target's
// repository, and every line added holds a target's digest, or a tag key
// with a target's tag.
func checkValuesLines(t *testing.T, input, output []byte, targets []Target) {
	t.Helper()
	removed, added := lineDiff(splitLines(input), splitLines(output))
	for _, l := range removed {
		ok := strings.Contains(l, "tag") || strings.Contains(l, "digest") || strings.Contains(l, "image") || strings.Contains(l, "value")
		for _, tg := range targets {
			ok = ok || strings.Contains(l, tg.Repo[strings.LastIndexByte(tg.Repo, '/')+1:])
		}
		if !ok {
			t.Errorf("line changed that holds no image: %q", l)
		}
	}
	for _, l := range added {
		ok := false
		for _, tg := range targets {
			ok = ok || strings.Contains(l, tg.Digest) || strings.Contains(l, "tag:") && strings.Contains(l, tg.Tag)
		}
		if !ok {
			t.Errorf("line added that holds no pinned value: %q", l)
		}
	}
	if len(added) < len(removed) {
		t.Errorf("%d lines removed but only %d added", len(removed), len(added))
	}
}
