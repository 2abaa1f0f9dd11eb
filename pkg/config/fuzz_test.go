package config_test

import (
	"encoding/json"
	"errors"
	"path"
	"regexp"
	"slices"
	"testing"

	"github.com/ferrycd/ferry/pkg/config"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	for _, tc := range errorCases {
		f.Add(tc.in)
	}
	for _, s := range []string{
		exampleFile,
		"version: 1\nenvironments: &e [{name: a, repo: *e}]\n",
		"version: 1\nenvironments: [&x {name: a}, {<<: *x, name: b}]\n",
		"version: 1\nenvironments: [{name: a, policy: &p {pullRequest: true}}, {name: b, policy: *p}]\n",
		"version: !!int \"1\"\nenvironments: [{name: !!str a}]\n",
		"version: 1\n1: 2\n? [a]\n: b\n",
		"version: 1\nenvironments: [{name: a, path: !custom \"{app}\"}]\n",
		"{version: 1, environments: [{name: a, branch: b/c, path: \"{env}/x/{app}\"}, {name: c, branch: b/c}]}\n",
		"version: 1\nenvironments:\n- name: a\n  repo: &r [x, *r]\n",
		"\xef\xbb\xbfversion: 1\nenvironments: [{name: a}]\n",
		"version: 1\r\nenvironments:\r\n  - name: a\r\n",
		"version: 1\napp: web\nenvironments: [{name: a, path: \"{env}\"}, {name: b, path: \"apps/{app}\"}]\n",
	} {
		f.Add(s)
	}
	sch := compileSchema(f)
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := config.Parse("ferry.yaml", []byte(in))
		if err != nil {
			var e *config.Error
			if !errors.As(err, &e) || e.File != "ferry.yaml" || e.Msg == "" {
				t.Fatalf("Parse error %q is no *config.Error for ferry.yaml", err)
			}
			return
		}
		if len(cfg.Environments) == 0 {
			t.Fatal("Parse accepts a file without environments")
		}
		names := cfg.Names()
		for i, e := range cfg.Environments {
			if got, err := cfg.Env(e.Name); err != nil || got != &cfg.Environments[i] {
				t.Fatalf("Env(%q) = %v, %v", e.Name, got, err)
			}
			if slices.Index(names, e.Name) != i {
				t.Fatalf("name %q is not unique: %q", e.Name, names)
			}
			if _, err := config.ParseTemplate(string(e.Path)); err != nil {
				t.Fatalf("environment %s has path %q: %v", e.Name, e.Path, err)
			}
			want := "hello"
			if !e.Path.HasApp() {
				want = "" // the repo's one app, which the path does not name
				if cfg.App == "" {
					t.Fatalf("environment %s has path %q without {app}, and the file no app", e.Name, e.Path)
				}
			}
			if app, ok := e.Path.Match(e.Name, e.Dir("hello")); !ok || app != want {
				t.Fatalf("%q.Match(%q, %q) = %q, %t", e.Path, e.Name, e.Dir("hello"), app, ok)
			}
			if e.Branch == "" || e.Line <= 0 {
				t.Fatalf("environment %+v has no branch or line", e)
			}
			prev, err := cfg.Previous(e.Name)
			switch {
			case i == 0 && (err == nil || e.Carry != ""):
				t.Fatalf("first environment %+v: Previous = %v, %v; want an error and no carry", e, prev, err)
			case i > 0 && (err != nil || prev.Name != names[i-1] || (e.Carry != config.CarryTree && e.Carry != config.CarryImages)):
				t.Fatalf("environment %+v: Previous = %v, %v", e, prev, err)
			}
		}
		v, err := jsonValue([]byte(in))
		if err != nil {
			t.Fatalf("Parse accepts what YAML cannot read as a value: %v", err)
		}
		if err := sch.Validate(v); err != nil {
			t.Fatalf("Parse accepts what the schema rejects: %v", err)
		}
	})
}

// FuzzTemplate holds ParseTemplate equal to the schema's pattern for
// paths, and Match to Expand's inverse.
func FuzzTemplate(f *testing.F) {
	for _, tc := range templateCases {
		f.Add(tc.in, "hello")
	}
	f.Add("envs/{env}/{app}", "a/b")
	f.Add("{app}", "..")
	f.Add("envs/{env}", "hello")
	f.Add("{env}", "")
	var schema struct {
		Defs struct {
			Path struct{ Pattern string } `json:"path"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(config.Schema(), &schema); err != nil {
		f.Fatal(err)
	}
	pattern := regexp.MustCompile(schema.Defs.Path.Pattern)
	f.Fuzz(func(t *testing.T, s, app string) {
		tmpl, err := config.ParseTemplate(s)
		if (err == nil) != pattern.MatchString(s) {
			t.Fatalf("ParseTemplate(%q) says %v, the schema's pattern %t", s, err, pattern.MatchString(s))
		}
		if err != nil {
			return
		}
		dir := tmpl.Expand("staging", app)
		got, ok := tmpl.Match("staging", dir)
		if !tmpl.HasApp() {
			// The repo's one app: its directory, whatever app is.
			if got != "" || !ok || dir != tmpl.Expand("staging", "other") {
				t.Fatalf("%q.Match(%q) = %q, %t; a template without {app} names no app and matches its one directory", s, dir, got, ok)
			}
			if parent, rest := tmpl.Parent("staging"); parent != dir || rest != "" {
				t.Fatalf("%q.Parent = %q, %q; want its directory %q", s, parent, rest, dir)
			}
			return
		}
		if valid := config.ValidApp(app) == nil; ok != valid || (ok && got != app) {
			t.Fatalf("%q.Match(%q) = %q, %t for app %q (valid: %t)", s, dir, got, ok, app, valid)
		}
		if parent, rest := tmpl.Parent("staging"); ok && path.Join(parent, app, rest) != dir {
			t.Fatalf("%q.Parent = %q, %q, which do not join with app %q to %q", s, parent, rest, app, dir)
		}
	})
}
