package manifest

// Golden cases and tests for Flux image-automation setter markers (issue
// 11). Each case directory has a SOURCE note naming the public input it is
// built from.

const (
	digestPodinfo = "sha256:04d1b7ec0eaa8700acbf2951a468e3c4376422d3807247296e669d6c0439690c"
	digestGolang  = "sha256:d754ed9f64ac293b10268157f283ee23256fb32a4f8dedb25c8446ca5bcb0bb3"
	digestUpdated = "sha256:9ff7d52d53b3639b959907155509b1795020364a2db9fdf186ba499792689655"
	digestImage   = "sha256:0604fdb7edd7a8eacbcbdebdf7aad00db03650efd7f927f4b16f6cd0e0c3747e"
)

var (
	podinfo = Target{Repo: "ghcr.io/stefanprodan/podinfo", Tag: "5.0.3", Digest: digestPodinfo}
	golang  = Target{Repo: "docker.io/golang", Tag: "1.15.7", Digest: digestGolang}
	myApp   = Target{Repo: "ghcr.io/my-org/my-app", Tag: "4.0.7", Digest: digestUpdated}
	// The policies of image-automation-controller's setters test.
	fakeUpdated = Target{Repo: "index.repo.fake/updated", Tag: "v1.0.1", Digest: digestUpdated, Policy: "automation-ns:policy"}
	withDigest  = Target{Repo: "image", Tag: "v1.0.0", Digest: digestImage, Policy: "automation-ns:policy-with-digest"}
	imagePolicy = Target{Repo: "image", Tag: "v1.0.1", Digest: digestImage, Policy: "automation-ns:policy"}
)

// The cases join the table of rewrite_test.go, so the golden test, its
// idempotence pass and changed-lines check, and the fuzz seeds cover them.
func init() {
	goldenCases = append(goldenCases, []struct {
		dir     string
		file    string
		targets []Target
		changes []string
	}{
		{"setter-full", "podinfo.yaml", []Target{podinfo, golang}, []string{
			"17 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"32 setter docker.io/golang:1.15.6",
			"40 setter ghcr.io/stefanprodan/podinfo:5.0.0",
		}},
		{"setter-tag", "podinfo.yaml", []Target{podinfo}, []string{
			"10 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"21 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"29 setter ghcr.io/stefanprodan/podinfo:latest",
			"39 setter ghcr.io/stefanprodan/podinfo:latest",
		}},
		{"setter-name-tag", "podinfo.yaml", []Target{podinfo}, []string{
			"9 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"20 setter ghcr.io/stefanprodan/podinfo:5.0.0",
		}},
		{"setter-digest", "helmrelease.yaml", []Target{myApp}, []string{
			"9 setter ghcr.io/my-org/my-app:4.0.6@sha256:6129bb944cada32b4662eafd13fd9904d34c77286bf2ec4523eaedb711757cb0",
		}},
		{"setter-kustomization", "kustomization.yml", []Target{fakeUpdated, withDigest}, []string{
			"8 setter replaced:v1",
			"10 setter image@sha256:1234567890abcdef",
			"28 setter image",
		}},
		{"setter-mixed", "cronjob.yaml", []Target{imagePolicy}, []string{
			"17 setter image:v1.0.0",
		}},
	}...)
}
