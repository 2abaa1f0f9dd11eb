package config_test

import (
	"testing"

	"github.com/ferrycd/ferry/pkg/config"
)

// templateCases are path templates with ParseTemplate's verdict: "" for
// a good one, else the exact error.
var templateCases = []struct {
	in, wantErr string
}{
	{in: "{app}"},
	{in: "apps/{app}"},
	{in: "envs/{env}/{app}"},
	{in: "{env}/{app}"},
	{in: "{app}/{env}"},
	{in: "apps/{app}/overlays/{env}"},
	{in: "clusters/eu-1/{env}/apps/{app}/base"},
	{in: ".github/{app}"},
	{in: "a..b/...//{app}", wantErr: `path template "a..b/...//{app}": has an empty segment ("//")`},
	{in: "a..b/.../{app}"},
	{in: "a b/ünïcode/{app}"},

	{in: "", wantErr: `path template "": empty; want a directory such as apps/{app}`},
	{in: "apps"},
	{in: "envs/{env}"},
	{in: "{env}"},
	{in: "{env}/overlay"},
	{in: "deploy/{env}/.k8s"},
	{in: "envs/{env}/{env}", wantErr: `path template "envs/{env}/{env}": has {env} more than once`},
	{in: "envs/{env}/", wantErr: `path template "envs/{env}/": ends with '/'`},
	{in: "envs/{app}/{env}/{app}", wantErr: `path template "envs/{app}/{env}/{app}": has {app} more than once`},
	{in: "/apps/{app}", wantErr: `path template "/apps/{app}": starts with '/'; paths are relative to the repository's root`},
	{in: "apps/{app}/", wantErr: `path template "apps/{app}/": ends with '/'`},
	{in: "apps//{app}", wantErr: `path template "apps//{app}": has an empty segment ("//")`},
	{in: "./apps/{app}", wantErr: `path template "./apps/{app}": has a "." segment; write the path clean, inside the repository`},
	{in: "apps/../{app}", wantErr: `path template "apps/../{app}": has a ".." segment; write the path clean, inside the repository`},
	{in: `apps\{app}`, wantErr: `path template "apps\\{app}": contains '\'; separate directories with '/'`},
	{in: "apps/\x00/{app}", wantErr: `path template "apps/\x00/{app}": contains a control character`},
	{in: "apps/\u0085/{app}", wantErr: `path template "apps/\u0085/{app}": contains a control character`},
	{in: "apps/{app}/{app}", wantErr: `path template "apps/{app}/{app}": has {app} more than once`},
	{in: "{env}/{app}/{env}", wantErr: `path template "{env}/{app}/{env}": has {env} more than once`},
	{in: "apps/app-{app}", wantErr: `path template "apps/app-{app}": segment "app-{app}": {app} and {env} must each be a whole segment, as in envs/{env}/{app}`},
	{in: "apps/{env}{app}", wantErr: `path template "apps/{env}{app}": segment "{env}{app}": {app} and {env} must each be a whole segment, as in envs/{env}/{app}`},
	{in: "apps/{name}", wantErr: `path template "apps/{name}": unknown placeholder {name}; only {app} and {env} are known`},
	{in: "apps/{APP}", wantErr: `path template "apps/{APP}": unknown placeholder {APP}; only {app} and {env} are known`},
	{in: "apps/{}/{app}", wantErr: `path template "apps/{}/{app}": unknown placeholder {}; only {app} and {env} are known`},
	{in: "a{b/{app}", wantErr: `path template "a{b/{app}": segment "a{b" contains '{' or '}'`},
	{in: "{app}/x}", wantErr: `path template "{app}/x}": segment "x}" contains '{' or '}'`},
}

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range templateCases {
		got, err := config.ParseTemplate(tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseTemplate(%q): %v", tc.in, err)
		case tc.wantErr == "" && string(got) != tc.in:
			t.Errorf("ParseTemplate(%q) = %q", tc.in, got)
		case tc.wantErr != "" && err == nil:
			t.Errorf("ParseTemplate(%q) = %q, want error %q", tc.in, got, tc.wantErr)
		case tc.wantErr != "" && err.Error() != tc.wantErr:
			t.Errorf("ParseTemplate(%q) error:\n got %q\nwant %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tmpl      config.Template
		env, app  string
		dir       string // Expand
		parent    string // Parent's dir
		rest      string // Parent's rest
		notAppDir []string
	}{
		{tmpl: config.DefaultPath, env: "candidate", app: "hello", dir: "apps/hello", parent: "apps",
			notAppDir: []string{"apps", "apps/hello/x", "other/hello", "apps/.", "apps/..", "apps/", "", "."}},
		{tmpl: "{app}", env: "prod", app: "hello", dir: "hello", parent: ".",
			notAppDir: []string{"a/b", "", ".", ".."}},
		{tmpl: "envs/{env}/{app}", env: "staging", app: "hello", dir: "envs/staging/hello", parent: "envs/staging",
			notAppDir: []string{"envs/production/hello", "envs/{env}/hello", "envs/staging", "envs/staging/hello/base"}},
		{tmpl: "apps/{app}/overlays/{env}", env: "staging", app: "hello", dir: "apps/hello/overlays/staging", parent: "apps", rest: "overlays/staging",
			notAppDir: []string{"apps/hello/overlays/production", "apps/hello/overlays", "apps/hello"}},
		{tmpl: "{env}/{app}", env: "qa", app: "web-1", dir: "qa/web-1", parent: "qa"},
		{tmpl: "{app}/{env}", env: "qa", app: "web.v2", dir: "web.v2/qa", parent: ".", rest: "qa"},
		{tmpl: "envs/{env}/{app}", env: "staging", app: "{env}", dir: "envs/staging/{env}", parent: "envs/staging"},
		// Without {app}: the one app's directory, whatever the app.
		{tmpl: "envs/{env}", env: "qa", app: "", dir: "envs/qa", parent: "envs/qa",
			notAppDir: []string{"envs/staging", "envs/qa/hello", "envs", ""}},
		{tmpl: "deploy", env: "qa", app: "", dir: "deploy", parent: "deploy", notAppDir: []string{"deploy/qa"}},
	} {
		if got := tc.tmpl.Expand(tc.env, "ignored"); !tc.tmpl.HasApp() && got != tc.dir {
			t.Errorf("%q.Expand(%q, ignored) = %q, want %q", tc.tmpl, tc.env, got, tc.dir)
		}
		if got := tc.tmpl.Expand(tc.env, tc.app); got != tc.dir {
			t.Errorf("%q.Expand(%q, %q) = %q, want %q", tc.tmpl, tc.env, tc.app, got, tc.dir)
		}
		if app, ok := tc.tmpl.Match(tc.env, tc.dir); !ok || app != tc.app {
			t.Errorf("%q.Match(%q, %q) = %q, %t; want %q, true", tc.tmpl, tc.env, tc.dir, app, ok, tc.app)
		}
		for _, dir := range tc.notAppDir {
			if app, ok := tc.tmpl.Match(tc.env, dir); ok {
				t.Errorf("%q.Match(%q, %q) = %q, true; want false", tc.tmpl, tc.env, dir, app)
			}
		}
		dir, rest := tc.tmpl.Parent(tc.env)
		if dir != tc.parent || rest != tc.rest {
			t.Errorf("%q.Parent(%q) = %q, %q; want %q, %q", tc.tmpl, tc.env, dir, rest, tc.parent, tc.rest)
		}
	}
}

func TestValidApp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, wantErr string }{
		{in: "hello"},
		{in: "Hello_World.v2"},
		{in: ".hidden"},
		{in: "..."},
		{in: "with space"},
		{in: "", wantErr: "app name is empty"},
		{in: "a/b", wantErr: `app name "a/b" contains '/'; an app is one directory`},
		{in: ".", wantErr: `app name "." is not a directory of its own`},
		{in: "..", wantErr: `app name ".." is not a directory of its own`},
		{in: "a\nb", wantErr: `app name "a\nb" contains a control character`},
		{in: "a\x7f", wantErr: `app name "a\x7f" contains a control character`},
	} {
		err := config.ValidApp(tc.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.wantErr {
			t.Errorf("ValidApp(%q) = %q, want %q", tc.in, got, tc.wantErr)
		}
	}
}
