package manifest

// Golden cases for image fields of every kind (issue 11): containers of
// any kind, ephemeral containers, image volumes, and placeholder values.
// Each case directory has a SOURCE note naming the public input it is
// built from.

const (
	digestRollouts = "sha256:6a3db1f6cbfedc5094b30a88eb7b836e9a572c6b108ca3ab35c7134416762d34"
	digestKnative  = "sha256:be6d9270de402b9ffbae7b6aeab4fd750ae279c39465180fc6b9f83da16c6593"
	digestKeda     = "sha256:308c477e9c541a4df316e7b2e7d02b5e7348c25f5910f7e82b582f7a4c8d9b85"
	digestBusybox  = "sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91"
	digestArtifact = "sha256:c7c5c1d70c5dec4416ab6158afd0b223ef40c29b1dc1f97ed9428b94d4cadb1c"
	digestAlpine   = "sha256:54c5b3dd459d5ef778bb2fa1e23a5fb0e1b62ae66970bcb436e8f81a1a1a8e41"
	digestMyImage  = "sha256:7471095e564d669dd964845e555b50752b30caa9d6d46e71d2e9278d63c57628"
)

var (
	rolloutsDemo = Target{Repo: "argoproj/rollouts-demo", Tag: "yellow", Digest: digestRollouts}
	helloworldGo = Target{Repo: "gcr.io/knative-samples/helloworld-go", Digest: digestKnative}
	rabbitClient = Target{Repo: "demo-rabbitmq-client", Tag: "2", Digest: digestKeda}
	busybox      = Target{Repo: "busybox", Tag: "1.36", Digest: digestBusybox}
	artifact     = Target{Repo: "quay.io/crio/artifact", Tag: "v3", Digest: digestArtifact}
	alpine       = Target{Repo: "alpine", Tag: "3.20", Digest: digestAlpine}
	myImage      = Target{Repo: "some.registry.io/my-image", Tag: "my-fixed-tag", Digest: digestMyImage}
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
		{"rollout", "rollout.yaml", []Target{rolloutsDemo}, []string{
			"21 container argoproj/rollouts-demo:blue",
		}},
		{"knative-service", "service.yaml", []Target{helloworldGo}, []string{
			"9 container gcr.io/knative-samples/helloworld-go",
		}},
		{"kruise-cloneset", "cloneset.yaml", []Target{nginx}, []string{
			"19 container nginx:alpine",
		}},
		{"keda-scaledjob", "scaledjob.yaml", []Target{rabbitClient}, []string{
			"19 container demo-rabbitmq-client:1",
		}},
		{"ephemeral-containers", "pod.yaml", []Target{busybox}, []string{
			"10 container busybox:1.28",
		}},
		{"image-volume", "image-volumes.yaml", []Target{artifact, alpine}, []string{
			"24 container quay.io/crio/artifact:v2",
			"46 container alpine",
		}},
		{"placeholders", "deploy.yaml", []Target{myImage, nginx}, []string{
			"10 container some.registry.io/my-image:{GENERATED_TAG}",
			"18 container nginx",
			"20 container nginx@sha256:111111111111111111",
		}},
	}...)
}
