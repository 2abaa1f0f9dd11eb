package ferry_test

import (
	"testing"

	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/google/go-cmp/cmp"
)

// Each CI's own variables make the audit trail; what the flags gave wins.
func TestProvenanceFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags ferry.Provenance
		env   map[string]string
		want  ferry.Provenance
	}{
		{
			name: "GitHub Actions",
			env:  map[string]string{"GITHUB_REPOSITORY": "acme/hello", "GITHUB_SHA": "a1b2", "GITHUB_RUN_ID": "42"},
			want: ferry.Provenance{SourceRepo: "https://github.com/acme/hello", SourceCommit: "a1b2", BuildID: "42",
				BuildURL: "https://github.com/acme/hello/actions/runs/42"},
		},
		{
			name: "GitLab CI",
			env: map[string]string{
				"GITLAB_CI": "true", "CI": "true",
				"CI_PROJECT_URL":  "https://gitlab.example.com/team/hello",
				"CI_COMMIT_SHA":   "c3d4",
				"CI_PIPELINE_ID":  "1234",
				"CI_PIPELINE_URL": "https://gitlab.example.com/team/hello/-/pipelines/1234",
				"CI_JOB_ID":       "98765", // one job of the pipeline: not the build
			},
			want: ferry.Provenance{SourceRepo: "https://gitlab.example.com/team/hello", SourceCommit: "c3d4", BuildID: "1234",
				BuildURL: "https://gitlab.example.com/team/hello/-/pipelines/1234"},
		},
		{
			name:  "GitLab CI, flags win",
			flags: ferry.Provenance{SourceRepo: "https://example.com/mirror", BuildID: "b-7"},
			env:   map[string]string{"GITLAB_CI": "true", "CI_PROJECT_URL": "https://gitlab.com/team/hello", "CI_COMMIT_SHA": "c3d4", "CI_PIPELINE_ID": "1234"},
			want:  ferry.Provenance{SourceRepo: "https://example.com/mirror", SourceCommit: "c3d4", BuildID: "b-7"},
		},
		{
			// Only GitLab's runner sets GITLAB_CI: CI_* variables alone
			// could be anyone's.
			name: "CI_ variables without GITLAB_CI",
			env:  map[string]string{"CI_PROJECT_URL": "https://gitlab.com/team/hello", "CI_COMMIT_SHA": "c3d4"},
			want: ferry.Provenance{},
		},
		{
			name: "Cloud Build",
			env: map[string]string{"BUILD_ID": "b-1", "COMMIT_SHA": "e5f6", "REPO_FULL_NAME": "acme/hello",
				"PROJECT_ID": "p", "LOCATION": "us-central1"},
			want: ferry.Provenance{SourceRepo: "https://github.com/acme/hello", SourceCommit: "e5f6", BuildID: "b-1",
				BuildURL: "https://console.cloud.google.com/cloud-build/builds;region=us-central1/b-1?project=p"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ferry.ProvenanceFromEnv(tc.flags, func(k string) string { return tc.env[k] })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
