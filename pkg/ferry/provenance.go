package ferry

import "strings"

// ProvenanceFromEnv fills what p lacks from the variables CI systems set:
// GitHub Actions (GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_RUN_ID), GitLab CI
// (GITLAB_CI=true with CI_PROJECT_URL, CI_COMMIT_SHA, CI_PIPELINE_ID,
// CI_PIPELINE_URL) and Cloud Build (COMMIT_SHA, BUILD_ID, PROJECT_ID,
// LOCATION, REPO_FULL_NAME or REPO_NAME; Cloud Build exports substitutions
// as variables when the build sets options.automapSubstitutions). Flags
// always win.
func ProvenanceFromEnv(p Provenance, getenv func(string) string) Provenance {
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = strings.TrimSpace(v)
		}
	}
	if repo := getenv("GITHUB_REPOSITORY"); repo != "" {
		server := getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		set(&p.SourceRepo, server+"/"+repo)
		set(&p.SourceCommit, getenv("GITHUB_SHA"))
		if run := getenv("GITHUB_RUN_ID"); run != "" {
			set(&p.BuildID, run)
			set(&p.BuildURL, server+"/"+repo+"/actions/runs/"+run)
		}
		return p
	}
	if getenv("GITLAB_CI") == "true" {
		// The pipeline is the build: a job's ID names one step of it.
		set(&p.SourceRepo, getenv("CI_PROJECT_URL"))
		set(&p.SourceCommit, getenv("CI_COMMIT_SHA"))
		set(&p.BuildID, getenv("CI_PIPELINE_ID"))
		set(&p.BuildURL, getenv("CI_PIPELINE_URL"))
		return p
	}
	if id := getenv("BUILD_ID"); id != "" {
		set(&p.BuildID, id)
		set(&p.SourceCommit, getenv("COMMIT_SHA"))
		if full := getenv("REPO_FULL_NAME"); full != "" {
			set(&p.SourceRepo, "https://github.com/"+full)
		} else {
			set(&p.SourceRepo, getenv("REPO_NAME"))
		}
		if project := getenv("PROJECT_ID"); project != "" {
			region := getenv("LOCATION")
			if region == "" {
				region = "global"
			}
			set(&p.BuildURL, "https://console.cloud.google.com/cloud-build/builds;region="+region+"/"+id+"?project="+project)
		}
	}
	return p
}
