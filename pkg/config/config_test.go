package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/pkg/config"
)

// The three layouts ferry.yaml is for, as the design gives them.
const (
	layoutDirectories = `# ferry.yaml: staging and production as directories on one branch
version: 1
defaults:                 # optional; each key applies to every environment that does not set it
  branch: main
  path: envs/{env}/{app}
environments:             # in promotion order: deploy writes to the first, promote --to X reads from the one before X
  - name: staging
  - name: production
    carry: images         # what a promotion INTO this environment carries: tree | images
`
	layoutBranches = `# branches (today's layout)
version: 1
environments:
  - name: candidate       # branch defaults to the name, path defaults to apps/{app}
  - name: production
`
	layoutOneApp = `# one app per env repo, its environments as directories (kostis-codefresh/gitops-environment-promotion)
version: 1
app: simple-app           # the repo's one app: the paths have no {app}
defaults: {branch: main, path: "envs/{env}"}
environments:
  - name: qa
  - name: staging-us
  - name: prod-eu
`
	layoutFanOut = `# directories plus a separate production repo, fanned out to two regions
version: 1
defaults: {path: "apps/{app}/overlays/{env}", branch: main}
environments:
  - name: staging
  - name: production
    repo: [https://git.example.com/org/prod-eu.git, https://git.example.com/org/prod-us.git]
    branch: main
`
)

// parseCases are files Parse accepts, with what it makes of them.
var parseCases = []struct {
	name string
	in   string
	app  string // Config.App
	want []config.Environment
}{
	{name: "directories", in: layoutDirectories, want: []config.Environment{
		{Name: "staging", Branch: "main", Path: "envs/{env}/{app}", Line: 7},
		{Name: "production", Branch: "main", Path: "envs/{env}/{app}", Carry: config.CarryImages, Line: 8},
	}},
	{name: "branches", in: layoutBranches, want: []config.Environment{
		{Name: "candidate", Branch: "candidate", Path: config.DefaultPath, Line: 4},
		{Name: "production", Branch: "production", Path: config.DefaultPath, Carry: config.CarryTree, Line: 5},
	}},
	{name: "fan-out", in: layoutFanOut, want: []config.Environment{
		{Name: "staging", Branch: "main", Path: "apps/{app}/overlays/{env}", Line: 5},
		{Name: "production", Repos: []string{"https://git.example.com/org/prod-eu.git", "https://git.example.com/org/prod-us.git"},
			Branch: "main", Path: "apps/{app}/overlays/{env}", Carry: config.CarryImages, Line: 6},
	}},
	{name: "one environment", in: `
version: 1
environments:
  - name: prod
`, want: []config.Environment{{Name: "prod", Branch: "prod", Path: config.DefaultPath, Line: 4}}},
	{name: "defaults for every key, and overrides", in: `
version: 1
defaults:
  repo: https://git.example.com/org/envs.git
  branch: main
  path: "{env}/{app}"
  carry: tree
  policy: {pullRequest: true}
environments:
  - name: dev
  - name: qa
  - name: prod
    repo: [https://git.example.com/org/prod.git]
    branch: release
    path: clusters/prod/{app}
    carry: images
    policy:
      pullRequest: false
`, want: []config.Environment{
		{Name: "dev", Repos: []string{"https://git.example.com/org/envs.git"}, Branch: "main", Path: "{env}/{app}", PullRequest: true, Line: 10},
		{Name: "qa", Repos: []string{"https://git.example.com/org/envs.git"}, Branch: "main", Path: "{env}/{app}", Carry: config.CarryTree, PullRequest: true, Line: 11},
		{Name: "prod", Repos: []string{"https://git.example.com/org/prod.git"}, Branch: "release", Path: "clusters/prod/{app}", Carry: config.CarryImages, Line: 12},
	}},
	{name: "a directory that changes without {env} carries images", in: `
version: 1
environments:
  - name: candidate
  - name: production
    path: deploy/{app}
`, want: []config.Environment{
		{Name: "candidate", Branch: "candidate", Path: config.DefaultPath, Line: 4},
		{Name: "production", Branch: "production", Path: "deploy/{app}", Carry: config.CarryImages, Line: 5},
	}},
	{name: "carry says tree across directories", in: `
version: 1
defaults: {branch: main, path: "envs/{env}/{app}"}
environments:
  - name: staging
  - name: production
    carry: tree
`, want: []config.Environment{
		{Name: "staging", Branch: "main", Path: "envs/{env}/{app}", Line: 5},
		{Name: "production", Branch: "main", Path: "envs/{env}/{app}", Carry: config.CarryTree, Line: 6},
	}},
	{name: "one branch and directory in different repositories", in: `
version: 1
defaults: {branch: main}
environments:
  - name: staging
    repo: https://git.example.com/org/staging.git
  - name: production
    repo: https://git.example.com/org/production.git
`, want: []config.Environment{
		{Name: "staging", Repos: []string{"https://git.example.com/org/staging.git"}, Branch: "main", Path: config.DefaultPath, Line: 5},
		{Name: "production", Repos: []string{"https://git.example.com/org/production.git"}, Branch: "main", Path: config.DefaultPath, Carry: config.CarryTree, Line: 7},
	}},
	{name: "{app} at different depths that never meet", in: `
version: 1
defaults: {branch: main}
environments:
  - name: staging
    path: apps/{app}/staging
  - name: production
    path: apps/production/{app}
`, want: []config.Environment{
		{Name: "staging", Branch: "main", Path: "apps/{app}/staging", Line: 5},
		{Name: "production", Branch: "main", Path: "apps/production/{app}", Carry: config.CarryImages, Line: 7},
	}},
	{name: "flow style, anchors and aliases", in: `
version: 1
defaults: {branch: &b main}
environments: [{name: a, path: "a/{app}"}, {name: b, branch: *b, path: "b/{app}", repo: &r [one, two]}, {name: c, repo: *r}]
`, want: []config.Environment{
		{Name: "a", Branch: "main", Path: "a/{app}", Line: 4},
		{Name: "b", Repos: []string{"one", "two"}, Branch: "main", Path: "b/{app}", Carry: config.CarryImages, Line: 4},
		{Name: "c", Repos: []string{"one", "two"}, Branch: "main", Path: config.DefaultPath, Carry: config.CarryImages, Line: 4},
	}},
	{name: "one app, environments as directories", app: "simple-app", in: layoutOneApp, want: []config.Environment{
		{Name: "qa", Branch: "main", Path: "envs/{env}", Line: 6},
		{Name: "staging-us", Branch: "main", Path: "envs/{env}", Carry: config.CarryImages, Line: 7},
		{Name: "prod-eu", Branch: "main", Path: "envs/{env}", Carry: config.CarryImages, Line: 8},
	}},
	{name: "one app, environments as branches", app: "web", in: `
version: 1
app: web
defaults: {path: deploy}
environments:
  - name: candidate
  - name: production
`, want: []config.Environment{
		{Name: "candidate", Branch: "candidate", Path: "deploy", Line: 6},
		{Name: "production", Branch: "production", Path: "deploy", Carry: config.CarryTree, Line: 7},
	}},
	{name: "one app, one path with {app}", app: "web", in: `
version: 1
app: web
environments:
  - name: staging
    path: apps/{app}
  - name: production
    path: apps/web
`, want: []config.Environment{
		{Name: "staging", Branch: "staging", Path: "apps/{app}", Line: 5},
		{Name: "production", Branch: "production", Path: "apps/web", Carry: config.CarryTree, Line: 7},
	}},
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Parse("ferry.yaml", []byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := &config.Config{File: "ferry.yaml", App: tc.app, Environments: tc.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// schemaVerdict is what the JSON Schema must say of a file Parse rejects.
type schemaVerdict int

const (
	// schemaRejects: the rule is one the schema expresses, so both reject.
	schemaRejects schemaVerdict = iota
	// schemaAccepts: only Parse can check the rule (repeated names, where
	// directories land, git's finer rules), so the schema accepts.
	schemaAccepts
	// noValue: the file is no YAML value to validate (a syntax error or a
	// repeated key, which YAML itself forbids).
	noValue
)

// errorCases are files Parse rejects, with its exact message.
var errorCases = []struct {
	name   string
	in     string
	want   string
	schema schemaVerdict
}{
	// The file as a whole.
	{name: "empty", in: "", want: "ferry.yaml: empty; want version: 1 and a list of environments"},
	{name: "only comments", in: "# nothing yet\n", want: "ferry.yaml: empty; want version: 1 and a list of environments"},
	{name: "only a document marker", in: "---\n", want: "ferry.yaml: empty; want version: 1 and a list of environments"},
	{name: "a list", in: "- name: staging\n", want: "ferry.yaml:1: want a mapping of version and environments, got a list"},
	{name: "a string", in: "hello\n", want: `ferry.yaml:1: want a mapping of version and environments, got the string "hello"`},
	{name: "not YAML", in: "version: 1\nenvironments: [\n", schema: noValue,
		want: "ferry.yaml:2: not valid YAML: did not find expected node content"},
	{name: "bad indentation", in: "version: 1\nenvironments:\n  - name: a\n    branch: main\n      path: x\n", schema: noValue,
		want: "ferry.yaml:5: not valid YAML: mapping values are not allowed in this context"},
	{name: "two documents", schema: schemaAccepts, in: `version: 1
environments: [{name: a}]
---
version: 1
`, want: "ferry.yaml:3: a second YAML document; the file holds one"},

	// The top level.
	{name: "unknown top-level key", in: `version: 1
envs: [{name: a}]
environments: [{name: a}]
`, want: `ferry.yaml:2: unknown key "envs" (known: version, app, defaults, environments)`},
	{name: "repeated top-level key", schema: noValue, in: `version: 1
environments: [{name: a}]
version: 1
`, want: `ferry.yaml:3: key "version" appears twice (first at line 1)`},
	{name: "no version", in: "environments: [{name: a}]\n", want: `ferry.yaml:1: no version; start the file with "version: 1"`},
	{name: "version 2", in: "version: 2\nenvironments: [{name: a}]\n", want: "ferry.yaml:1: version: 2 is not a version this ferry reads; want 1"},
	{name: "version as a string", in: "version: \"1\"\nenvironments: [{name: a}]\n", want: `ferry.yaml:1: version: want 1, got the string "1"`},
	{name: "no environments", in: "version: 1\n", want: "ferry.yaml:1: no environments; list them in promotion order"},
	{name: "no environment", in: "version: 1\nenvironments: []\n", want: "ferry.yaml:2: environments: empty; list at least one, in promotion order"},
	{name: "environments null", in: "version: 1\nenvironments:\n", want: "ferry.yaml:2: environments: want a list, got nothing (null)"},
	{name: "environments a mapping", in: "version: 1\nenvironments: {staging: {}}\n", want: "ferry.yaml:2: environments: want a list, got a mapping"},

	// An environment.
	{name: "unknown environment key", in: `version: 1
environments:
  - name: staging
  - name: production
    brnach: main
`, want: `ferry.yaml:5: environments[1]: unknown key "brnach" (known: name, repo, branch, path, carry, policy)`},
	{name: "repeated environment key", schema: noValue, in: `version: 1
environments:
  - name: staging
    name: production
`, want: `ferry.yaml:4: environments[0]: key "name" appears twice (first at line 3)`},
	{name: "environment a string", in: "version: 1\nenvironments:\n  - staging\n",
		want: `ferry.yaml:3: environments[0]: want a mapping with a name, got the string "staging"; write "- name: staging"`},
	{name: "environment null", in: "version: 1\nenvironments:\n  -\n",
		want: `ferry.yaml:3: environments[0]: want a mapping with a name, got nothing (null)`},
	{name: "no name", in: "version: 1\nenvironments:\n  - branch: main\n", want: "ferry.yaml:3: environments[0]: no name"},
	{name: "name with capitals", in: "version: 1\nenvironments:\n  - name: Prod\n",
		want: `ferry.yaml:3: environments[0].name: "Prod" is not an environment name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
	{name: "name with underscore", in: "version: 1\nenvironments:\n  - name: pre_prod\n",
		want: `ferry.yaml:3: environments[0].name: "pre_prod" is not an environment name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
	{name: "name ending in '-'", in: "version: 1\nenvironments:\n  - name: prod-\n",
		want: `ferry.yaml:3: environments[0].name: "prod-" is not an environment name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
	{name: "name too long", in: "version: 1\nenvironments:\n  - name: " + strings.Repeat("a", 64) + "\n",
		want: `ferry.yaml:3: environments[0].name: "` + strings.Repeat("a", 64) + `" is not an environment name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
	{name: "name a number", in: "version: 1\nenvironments:\n  - name: 123\n",
		want: `ferry.yaml:3: environments[0].name: want a string, got the number 123; quote it if it is one: "123"`},
	{name: "name empty", in: "version: 1\nenvironments:\n  - name: ''\n",
		want: `ferry.yaml:3: environments[0].name: "" is not an environment name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
	{name: "repeated name", schema: schemaAccepts, in: `version: 1
environments:
  - name: staging
  - name: production
  - name: staging
    branch: other
`, want: `ferry.yaml:5: environments[2].name: "staging" is already environments[0]'s name (line 3)`},
	{name: "repeated name by alias", schema: schemaAccepts, in: `version: 1
environments:
  - &s {name: staging, branch: a}
  - *s
`, want: `ferry.yaml:4: environments[1].name: "staging" is already environments[0]'s name (line 3)`},

	// carry.
	{name: "carry unknown", in: `version: 1
environments:
  - name: staging
  - name: production
    carry: copy
`, want: `ferry.yaml:5: environments[1].carry: "copy" is neither tree nor images`},
	{name: "carry a boolean", in: `version: 1
defaults: {carry: true}
environments: [{name: a}]
`, want: `ferry.yaml:2: defaults.carry: want a string, got true (a boolean); quote it if it is one: "true"`},
	{name: "carry into the first environment", schema: schemaAccepts, in: `version: 1
environments:
  - name: staging
    carry: images
  - name: production
`, want: "ferry.yaml:4: environments[0].carry: nothing is promoted into staging, the first environment; carry says what a promotion into an environment carries"},

	// branch.
	{name: "branch a list", in: "version: 1\nenvironments:\n  - name: a\n    branch: [main]\n",
		want: "ferry.yaml:4: environments[0].branch: want a string, got a list"},
	{name: "branch empty", in: "version: 1\nenvironments:\n  - name: a\n    branch: ''\n",
		want: `ferry.yaml:4: environments[0].branch: "" is empty`},
	{name: "branch with a space", in: "version: 1\ndefaults:\n  branch: 'release 1'\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:3: defaults.branch: "release 1" contains " ", which git does not allow in a branch name`},
	{name: "branch with a colon", in: "version: 1\nenvironments:\n  - name: a\n    branch: 'a:b'\n",
		want: `ferry.yaml:4: environments[0].branch: "a:b" contains ":", which git does not allow in a branch name`},
	{name: "branch with ..", schema: schemaAccepts, in: "version: 1\nenvironments:\n  - name: a\n    branch: a..b\n",
		want: `ferry.yaml:4: environments[0].branch: "a..b" contains "..", which git does not allow in a branch name`},
	{name: "branch as a ref", schema: schemaAccepts, in: "version: 1\nenvironments:\n  - name: a\n    branch: refs/heads/main\n",
		want: `ferry.yaml:4: environments[0].branch: "refs/heads/main" starts with refs/; write the branch's short name, as in main`},
	{name: "branch ending .lock", schema: schemaAccepts, in: "version: 1\nenvironments:\n  - name: a\n    branch: env/a.lock\n",
		want: `ferry.yaml:4: environments[0].branch: "env/a.lock" has a part "a.lock" starting with '.' or ending with .lock, which git does not allow`},

	// path.
	{name: "path absolute", in: "version: 1\nenvironments:\n  - name: a\n    path: /apps/{app}\n",
		want: `ferry.yaml:4: environments[0].path: "/apps/{app}" starts with '/'; paths are relative to the repository's root`},
	{name: "path without {app}", in: "version: 1\ndefaults: {path: apps}\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:2: defaults.path: "apps" has no {app}: name the repo's one app with a top-level app: key`},
	{name: "an environment's path without {app}", in: "version: 1\nenvironments:\n  - name: qa\n    path: apps/{app}\n  - name: prod\n    path: envs/{env}\n",
		want: `ferry.yaml:6: environments[1].path: "envs/{env}" has no {app}: name the repo's one app with a top-level app: key`},
	{name: "path with {app} twice", in: "version: 1\napp: web\nenvironments:\n  - name: a\n    path: envs/{app}/{app}\n",
		want: `ferry.yaml:5: environments[0].path: "envs/{app}/{app}" has {app} more than once`},
	{name: "path with ..", in: "version: 1\nenvironments:\n  - name: a\n    path: ../{app}\n",
		want: `ferry.yaml:4: environments[0].path: "../{app}" has a ".." segment; write the path clean, inside the repository`},
	{name: "path with a placeholder in a segment", in: "version: 1\nenvironments:\n  - name: a\n    path: apps/{app}-{env}\n",
		want: `ferry.yaml:4: environments[0].path: "apps/{app}-{env}" segment "{app}-{env}": {app} and {env} must each be a whole segment, as in envs/{env}/{app}`},
	{name: "path a number", in: "version: 1\nenvironments:\n  - name: a\n    path: 1\n",
		want: `ferry.yaml:4: environments[0].path: want a string, got the number 1; quote it if it is one: "1"`},

	// repo.
	{name: "repo empty list", in: "version: 1\nenvironments:\n  - name: a\n    repo: []\n",
		want: "ferry.yaml:4: environments[0].repo: empty list; leave repo out for the repository ferry is given (--repo)"},
	{name: "repo a number", in: "version: 1\nenvironments:\n  - name: a\n    repo: 5\n",
		want: "ferry.yaml:4: environments[0].repo: want a repository or a list of them, got the number 5"},
	{name: "repo a mapping", in: "version: 1\ndefaults:\n  repo: {url: x}\nenvironments: [{name: a}]\n",
		want: "ferry.yaml:3: defaults.repo: want a repository or a list of them, got a mapping"},
	{name: "repo empty", in: "version: 1\nenvironments:\n  - name: a\n    repo: ''\n",
		want: `ferry.yaml:4: environments[0].repo: "" is empty`},
	{name: "repo list with a number", in: "version: 1\nenvironments:\n  - name: a\n    repo:\n      - https://git.example.com/a.git\n      - 7\n",
		want: "ferry.yaml:6: environments[0].repo[1]: want a repository, got the number 7"},
	{name: "repo listed twice", in: "version: 1\nenvironments:\n  - name: a\n    repo: [x, x]\n",
		want: `ferry.yaml:4: environments[0].repo[1]: "x" is listed twice`},
	{name: "repo listed twice, with .git", schema: schemaAccepts, in: "version: 1\nenvironments:\n  - name: a\n    repo: [https://h/x, https://h/x.git]\n",
		want: `ferry.yaml:4: environments[0].repo[1]: "https://h/x.git" is listed twice`},
	{name: "repo with a trailing space", in: "version: 1\nenvironments:\n  - name: a\n    repo: 'x '\n",
		want: `ferry.yaml:4: environments[0].repo: "x " has leading or trailing white space`},

	// app.
	{name: "app with every path having {app}", schema: schemaAccepts, in: "version: 1\napp: web\ndefaults: {path: \"envs/{env}/{app}\"}\nenvironments: [{name: a}, {name: b}]\n",
		want: `ferry.yaml:2: app: every path has {app}, so app: web would mean nothing; drop it, or write the paths without {app}, as in envs/{env}`},
	{name: "app with the default path", schema: schemaAccepts, in: "version: 1\nenvironments: [{name: a}]\napp: web\n",
		want: `ferry.yaml:3: app: every path has {app}, so app: web would mean nothing; drop it, or write the paths without {app}, as in envs/{env}`},
	{name: "app with '/'", in: "version: 1\napp: team/web\ndefaults: {path: \"envs/{env}\"}\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:2: app: app name "team/web" contains '/'; an app is one directory`},
	{name: "app ..", in: "version: 1\napp: ..\ndefaults: {path: \"envs/{env}\"}\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:2: app: app name ".." is not a directory of its own`},
	{name: "app empty", in: "version: 1\napp: ''\ndefaults: {path: \"envs/{env}\"}\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:2: app: app name is empty`},
	{name: "app a number", in: "version: 1\napp: 7\ndefaults: {path: \"envs/{env}\"}\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:2: app: want a string, got the number 7; quote it if it is one: "7"`},

	// policy and defaults.
	{name: "policy a list", in: "version: 1\nenvironments:\n  - name: a\n    policy: [pullRequest]\n",
		want: "ferry.yaml:4: environments[0].policy: want a mapping, got a list"},
	{name: "policy unknown key", in: "version: 1\nenvironments:\n  - name: a\n    policy: {approvals: 2}\n",
		want: `ferry.yaml:4: environments[0].policy: unknown key "approvals" (known: pullRequest)`},
	{name: "pullRequest yes", in: "version: 1\ndefaults:\n  policy:\n    pullRequest: yes\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:4: defaults.policy.pullRequest: want true or false, got the string "yes"`},
	{name: "defaults a list", in: "version: 1\ndefaults: [main]\nenvironments: [{name: a}]\n",
		want: "ferry.yaml:2: defaults: want a mapping, got a list"},
	{name: "defaults names an environment", in: "version: 1\ndefaults: {name: a}\nenvironments: [{name: a}]\n",
		want: `ferry.yaml:2: defaults: unknown key "name" (known: repo, branch, path, carry, policy)`},

	// Directories two environments share.
	{name: "one branch and directory", schema: schemaAccepts, in: `version: 1
defaults: {branch: main}
environments:
  - name: staging
  - name: production
`, want: "ferry.yaml:5: environments[1] (production): the same directory as environments[0] (staging, line 4), apps/{app} on branch main of the same repository, so a promotion would write where it reads; give each its own branch or put {env} in the path"},
	{name: "one directory for one app", schema: schemaAccepts, in: `version: 1
defaults: {branch: main}
environments:
  - name: staging
    path: apps/{app}/x
  - name: production
    path: apps/x/{app}
`, want: `ferry.yaml:6: environments[1] (production): the same directory as environments[0] (staging, line 4) for app "x", apps/x/x on branch main of the same repository, so a promotion would write where it reads`},
	{name: "one directory through {env}", schema: schemaAccepts, in: `version: 1
environments:
  - name: staging
    branch: main
    path: envs/production/{app}
  - name: qa
  - name: production
    branch: main
    path: envs/{env}/{app}
`, want: "ferry.yaml:7: environments[2] (production): the same directory as environments[0] (staging, line 3), envs/production/{app} on branch main of the same repository, so a promotion would write where it reads; give each its own branch or put {env} in the path"},
	{name: "one repository of a fan-out", schema: schemaAccepts, in: `version: 1
defaults: {branch: main, repo: [https://h/eu.git, https://h/us.git]}
environments:
  - name: staging
  - name: production
    repo: https://h/us
`, want: "ferry.yaml:5: environments[1] (production): the same directory as environments[0] (staging, line 4), apps/{app} on branch main of https://h/us, so a promotion would write where it reads; give each its own branch or put {env} in the path"},

	{name: "one app, one directory", schema: schemaAccepts, in: `version: 1
app: web
defaults: {branch: main, path: deploy}
environments:
  - name: staging
  - name: production
`, want: "ferry.yaml:6: environments[1] (production): the same directory as environments[0] (staging, line 5), deploy on branch main of the same repository, so a promotion would write where it reads; give each its own branch or put {env} in the path"},
	{name: "one app, one directory with and without {app}", schema: schemaAccepts, in: `version: 1
app: web
defaults: {branch: main}
environments:
  - name: staging
    path: apps/{app}
  - name: production
    path: apps/web
`, want: "ferry.yaml:7: environments[1] (production): the same directory as environments[0] (staging, line 5), apps/web on branch main of the same repository, so a promotion would write where it reads; give each its own branch or put {env} in the path"},

	// Several problems, in line order.
	{name: "several", in: `version: 1
environments:
  - name: Staging
    brnach: main
  - name: production
    carry: all
`, want: `ferry.yaml:3: environments[0].name: "Staging" is not an environment name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters
ferry.yaml:4: environments[0]: unknown key "brnach" (known: name, repo, branch, path, carry, policy)
ferry.yaml:6: environments[1].carry: "all" is neither tree nor images`},
	{name: "too many", in: "version: 1\nenvironments: [{name: a}]\n" + manyKeys(11), want: manyErrors(10) + "\nferry.yaml: too many errors"},
}

// manyKeys returns n lines of unknown top-level keys, k0 to k<n-1>.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "k%d: 1\n", i)
	}
	return b.String()
}

// manyErrors is what Parse says of the first n of manyKeys, from line 3.
func manyErrors(n int) string {
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(`ferry.yaml:%d: unknown key "k%d" (known: version, app, defaults, environments)`, i+3, i))
	}
	return strings.Join(lines, "\n")
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("ferry.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", cfg, tc.want)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("Parse error (-want +got):\n%s", diff)
			}
			var e *config.Error
			if !errors.As(err, &e) || e.File != "ferry.yaml" {
				t.Errorf("Parse error %q is no *config.Error for ferry.yaml", err)
			}
		})
	}
}

func TestLookups(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("ferry.yaml", []byte(`version: 1
defaults: {branch: main, path: "envs/{env}/{app}"}
environments: [{name: dev}, {name: staging}, {name: production}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"dev", "staging", "production"}, cfg.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	if got := cfg.First().Name; got != "dev" {
		t.Errorf("First = %s, want dev", got)
	}
	name := func(e *config.Environment, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return e.Name
	}
	for _, tc := range []struct {
		call string
		got  string
		want string
	}{
		{"Env(staging)", name(cfg.Env("staging")), "staging"},
		{"Env(prod)", name(cfg.Env("prod")), `error: unknown environment "prod" in ferry.yaml (known: dev, staging, production)`},
		{"Previous(staging)", name(cfg.Previous("staging")), "dev"},
		{"Previous(dev)", name(cfg.Previous("dev")), "error: dev is the first environment in ferry.yaml: no environment before it"},
		{"Previous(prod)", name(cfg.Previous("prod")), `error: unknown environment "prod" in ferry.yaml (known: dev, staging, production)`},
		{"Next(staging)", name(cfg.Next("staging")), "production"},
		{"Next(production)", name(cfg.Next("production")), "error: production is the last environment in ferry.yaml: no environment after it"},
		{"Next(prod)", name(cfg.Next("prod")), `error: unknown environment "prod" in ferry.yaml (known: dev, staging, production)`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.call, tc.got, tc.want)
		}
	}
	if _, err := cfg.Env("prod"); !errors.Is(err, config.ErrUnknownEnv) {
		t.Errorf("Env(prod) error %v does not match ErrUnknownEnv", err)
	}
	if _, err := cfg.Previous("dev"); !errors.Is(err, config.ErrNoPrevious) {
		t.Errorf("Previous(dev) error %v does not match ErrNoPrevious", err)
	}
	if _, err := cfg.Next("production"); !errors.Is(err, config.ErrNoNext) {
		t.Errorf("Next(production) error %v does not match ErrNoNext", err)
	}
	e, _ := cfg.Env("staging")
	if got, want := e.Dir("hello"), "envs/staging/hello"; got != want {
		t.Errorf("Dir(hello) = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, config.FileName)
	if _, err := config.Load(file); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an error matching fs.ErrNotExist", err)
	}
	if err := os.WriteFile(file, []byte(layoutBranches), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != file || len(cfg.Environments) != 2 {
		t.Errorf("Load = %+v", cfg)
	}
	if err := os.WriteFile(file, []byte("version: 1\nenvironments: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(file)
	if want := file + ":2: environments: empty; list at least one, in promotion order"; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %q", err, want)
	}
}
