package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Template is a directory template such as "envs/{env}/{app}": a clean,
// relative, slash-separated path in which {app} is at most one whole
// segment and {env} at most one other. A template without {app}, such as
// "envs/{env}", is the directory of an env repo's one app (Config.App).
// Parse and ParseTemplate accept only such templates; the methods assume
// one.
type Template string

// DefaultPath is an environment's path when neither it nor defaults set
// one: each app in its own directory under apps, the same on every branch.
const DefaultPath Template = "apps/{app}"

// The placeholders a template may hold, each as a whole segment.
const (
	appVar = "{app}"
	envVar = "{env}"
)

// ParseTemplate checks s against the rules of a path template.
func ParseTemplate(s string) (Template, error) {
	if why := checkTemplate(s); why != "" {
		return "", fmt.Errorf("path template %q: %s", s, why)
	}
	return Template(s), nil
}

// checkTemplate says what is wrong with s as a template, or "".
func checkTemplate(s string) string {
	switch {
	case s == "":
		return "empty; want a directory such as apps/{app}"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "contains a control character"
	case strings.Contains(s, `\`):
		return `contains '\'; separate directories with '/'`
	case strings.HasPrefix(s, "/"):
		return "starts with '/'; paths are relative to the repository's root"
	case strings.HasSuffix(s, "/"):
		return "ends with '/'"
	}
	apps, envs := 0, 0
	for seg := range strings.SplitSeq(s, "/") {
		switch {
		case seg == appVar:
			apps++
		case seg == envVar:
			envs++
		case seg == "":
			return `has an empty segment ("//")`
		case seg == "." || seg == "..":
			return fmt.Sprintf("has a %q segment; write the path clean, inside the repository", seg)
		case strings.Contains(seg, appVar) || strings.Contains(seg, envVar):
			return fmt.Sprintf("segment %q: {app} and {env} must each be a whole segment, as in envs/{env}/{app}", seg)
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			return fmt.Sprintf("unknown placeholder %s; only {app} and {env} are known", seg)
		case strings.ContainsAny(seg, "{}"):
			return fmt.Sprintf("segment %q contains '{' or '}'", seg)
		}
	}
	switch {
	case apps > 1:
		return "has {app} more than once"
	case envs > 1:
		return "has {env} more than once"
	}
	return ""
}

// HasApp reports whether t holds {app}: whether each app has a directory
// of its own, rather than t being the directory of a repo's one app.
func (t Template) HasApp() bool {
	return slices.Contains(strings.Split(string(t), "/"), appVar)
}

// resolve returns t's segments with {env} replaced by env; {app} stays.
func (t Template) resolve(env string) []string {
	segs := strings.Split(string(t), "/")
	for i, s := range segs {
		if s == envVar {
			segs[i] = env
		}
	}
	return segs
}

// Expand returns the directory of app in environment env; a template
// without {app} ignores app.
func (t Template) Expand(env, app string) string {
	segs := t.resolve(env)
	for i, s := range segs {
		if s == appVar {
			segs[i] = app
		}
	}
	return strings.Join(segs, "/")
}

// Match is Expand's inverse: it reports which app dir is the directory of
// in environment env, if any. dir is compared as written, so it must be
// clean and relative, as Expand returns it. A template without {app}
// names no app: Match reports "" and whether dir is its directory.
func (t Template) Match(env, dir string) (app string, ok bool) {
	segs := t.resolve(env)
	if !t.HasApp() {
		return "", dir == strings.Join(segs, "/")
	}
	got := strings.Split(dir, "/")
	if len(got) != len(segs) {
		return "", false
	}
	for i, s := range segs {
		switch {
		case s == appVar:
			app = got[i]
		case s != got[i]:
			return "", false
		}
	}
	if ValidApp(app) != nil {
		return "", false
	}
	return app, true
}

// Parent splits t, in environment env, around {app}: every app's
// directory is path.Join(dir, app, rest), so listing dir (one directory of
// a tree) and keeping the entries that hold rest lists the apps. dir is "."
// when {app} is the first segment, rest is "" when it is the last:
// "envs/{env}/{app}" gives "envs/staging" and "", and
// "apps/{app}/overlays/{env}" gives "apps" and "overlays/staging". A
// template without {app} (HasApp false) has no such directory: Parent
// returns its whole directory and "".
func (t Template) Parent(env string) (dir, rest string) {
	segs := t.resolve(env)
	for i, s := range segs {
		if s == appVar {
			dir = strings.Join(segs[:i], "/")
			if dir == "" {
				dir = "."
			}
			return dir, strings.Join(segs[i+1:], "/")
		}
	}
	return strings.Join(segs, "/"), ""
}

// ValidApp checks that name can be an app: one path segment, so that
// Expand and Match stay each other's inverse.
func ValidApp(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("app name is empty")
	case strings.Contains(name, "/"):
		return fmt.Errorf("app name %q contains '/'; an app is one directory", name)
	case name == "." || name == "..":
		return fmt.Errorf("app name %q is not a directory of its own", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("app name %q contains a control character", name)
	}
	return nil
}
