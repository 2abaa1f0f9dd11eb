// Package pipelines has no code of its own: its tests hold ferry's delivery
// files to what they promise. They build ferry the way the Dockerfile does,
// from the files .dockerignore lets through, check the binary is static and
// run it in an otherwise empty root; and they execute every ferry step of
// cloudbuild.yaml, pipelines/cloudbuild, pipelines/github, pipelines/gitlab
// and action.yml against a git http-backend and a registry on 127.0.0.1
// (and, for pull and merge requests, the GitHub and GitLab API stand-ins
// of internal/testforge, with internal/testgithub's GitHub App), in the
// order of a real rollout, with a stand-in or an explicit skip for every
// step that needs a cloud or a cluster.
package pipelines
