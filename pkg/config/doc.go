// Package config reads ferry.yaml, the optional file at an env repo's root
// that declares the environments in promotion order: where each one lives
// (repositories, branch, directory per app) and what a promotion into it
// carries. It parses and validates; it knows nothing of git, of rewriting
// manifests or of the network.
//
// Version 1 of the format:
//
//	version: 1
//	defaults:                 # optional; each key applies to every environment that does not set it
//	  branch: main
//	  path: envs/{env}/{app}
//	environments:             # in promotion order
//	  - name: staging
//	  - name: production
//	    carry: images
//
// An environment has a name (required; lowercase letters, digits and '-',
// as a DNS label) and may set:
//
//   - repo: a repository, or a list of them to fan out to; absent means the
//     repository ferry was given (--repo).
//   - branch: default the environment's name.
//   - path: a [Template] for each app's directory; default [DefaultPath].
//   - carry: what a promotion into the environment carries, [CarryTree] or
//     [CarryImages]; the default is tree when the environment before it
//     keeps each app in the same directory, images otherwise.
//   - policy: pullRequest (true or false) for now.
//
// defaults takes the same keys but name. A top-level app names an env
// repo's one app ([Config.App]) when its paths have no {app}, as in
// envs/{env}: a path without {app} needs it, and it is an error beside
// paths that all have {app}. Every problem Parse finds is an
// [*Error] naming the file and the line; unknown keys are errors, so that a
// misspelt key is not silently ignored. [Schema] is the same format as a
// JSON Schema, for editors.
package config
