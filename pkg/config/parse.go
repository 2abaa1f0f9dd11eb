package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Error is one problem in a file.
type Error struct {
	File string
	// Line is 0 when the problem is the file as a whole.
	Line int
	// Msg starts with where in the file, as "environments[1].branch: ...",
	// except for the top level.
	Msg string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// maxErrors is how many problems Parse reports before it stops listing
// them, as the Go compiler does.
const maxErrors = 10

// Keys each mapping knows, in the order messages list them.
var (
	topKeys      = []string{"version", "app", "defaults", "environments"}
	defaultsKeys = []string{"repo", "branch", "path", "carry", "policy"}
	envKeys      = []string{"name", "repo", "branch", "path", "carry", "policy"}
	policyKeys   = []string{"pullRequest"}
)

// Parse parses and validates a ferry.yaml. name is the file's name for
// messages. Each problem found is an *Error; when there are several, the
// error joins them (errors.Join), in line order.
func Parse(name string, data []byte) (*Config, error) {
	p := &parser{file: name}
	var cfg *Config
	if root := p.document(data); root != nil {
		if raw := p.config(root); len(p.errs) == 0 {
			cfg = p.resolve(raw)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

type parser struct {
	file string
	errs []*Error
	// appKey: the file has a top-level app key, good or not; a path
	// without {app} needs one.
	appKey bool
}

// errorf records a problem at n's line; where is the key path, "" at the
// top level.
func (p *parser) errorf(n *yaml.Node, where, format string, args ...any) {
	p.errorAt(n.Line, where, format, args...)
}

// errorAt records a problem at a line, 0 for the whole file.
func (p *parser) errorAt(line int, where, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if where != "" {
		msg = where + ": " + msg
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: msg})
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
	errs := make([]error, 0, maxErrors+1)
	for i, e := range p.errs {
		if i == maxErrors {
			errs = append(errs, &Error{File: p.file, Msg: "too many errors"})
			break
		}
		errs = append(errs, e)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// yamlLine finds the line in yaml's own messages, "yaml: line 3: ...".
var yamlLine = regexp.MustCompile(`(?s)^yaml: line ([0-9]+): (.*)$`)

// document returns the file's one top-level node, or nil after recording
// why there is none.
func (p *parser) document(data []byte) *yaml.Node {
	syntax := func(err error) {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			p.errorAt(line, "", "not valid YAML: %s", m[2])
			return
		}
		p.errorAt(0, "", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorAt(0, "", "empty; want version: 1 and a list of environments")
			return nil
		}
		syntax(err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.errorf(&next, "", "a second YAML document; the file holds one")
		return nil
	case !errors.Is(err, io.EOF):
		syntax(err)
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorAt(0, "", "empty; want version: 1 and a list of environments")
		return nil
	}
	n := deref(doc.Content[0])
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		p.errorAt(0, "", "empty; want version: 1 and a list of environments")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "want a mapping of version and environments, got %s", describe(n))
		return nil
	}
	return n
}

// deref follows aliases (*name) to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names what n is, for "want X, got Y".
func describe(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!null":
			return "nothing (null)"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value + " (a boolean)"
		default:
			return fmt.Sprintf("%s %q", tag, n.Value)
		}
	}
	return "an alias"
}

// field is one key of a mapping and its value.
type field struct{ key, value *yaml.Node }

// fields returns a mapping's known keys, recording unknown and repeated
// ones.
func (p *parser) fields(n *yaml.Node, where string, known []string) map[string]field {
	out := map[string]field{}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kd := deref(k)
		if kd.Kind != yaml.ScalarNode || kd.ShortTag() != "!!str" {
			p.errorf(k, where, "want a key, got %s", describe(kd))
			continue
		}
		name := kd.Value
		if first, ok := seen[name]; ok {
			p.errorf(k, where, "key %q appears twice (first at line %d)", name, first.Line)
			continue
		}
		seen[name] = k
		if !slices.Contains(known, name) {
			p.errorf(k, where, "unknown key %q (known: %s)", name, strings.Join(known, ", "))
			continue
		}
		out[name] = field{k, v}
	}
	return out
}

// str reads a string value.
func (p *parser) str(n *yaml.Node, where string) (string, bool) {
	d := deref(n)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!str" {
		return d.Value, true
	}
	hint := ""
	if d.Kind == yaml.ScalarNode && d.ShortTag() != "!!null" {
		hint = fmt.Sprintf("; quote it if it is one: %q", d.Value)
	}
	p.errorf(n, where, "want a string, got %s%s", describe(d), hint)
	return "", false
}

// rawConfig is the file as written, each value checked on its own.
type rawConfig struct {
	app      string
	appNode  *yaml.Node
	defaults settings
	envs     []rawEnv
}

// settings are the keys defaults and an environment share; nil is unset.
type settings struct {
	repos       []string // nil when unset; never empty when set
	branch      *string
	path        *Template
	carry       *Carry
	carryKey    *yaml.Node
	pullRequest *bool
}

type rawEnv struct {
	name     string
	nameLine int
	line     int
	settings
}

func (p *parser) config(n *yaml.Node) *rawConfig {
	raw := &rawConfig{}
	f := p.fields(n, "", topKeys)
	if v, ok := f["version"]; ok {
		p.version(v.value)
	} else {
		p.errorf(n, "", `no version; start the file with "version: 1"`)
	}
	if v, ok := f["app"]; ok {
		p.appKey = true
		if a, ok := p.str(v.value, "app"); ok {
			if err := ValidApp(a); err != nil {
				p.errorf(v.value, "app", "%v", err)
			} else {
				raw.app, raw.appNode = a, v.value
			}
		}
	}
	if v, ok := f["defaults"]; ok {
		if d := deref(v.value); d.Kind == yaml.MappingNode {
			raw.defaults = p.settings("defaults", p.fields(d, "defaults", defaultsKeys))
		} else {
			p.errorf(v.value, "defaults", "want a mapping, got %s", describe(d))
		}
	}
	v, ok := f["environments"]
	if !ok {
		p.errorf(n, "", "no environments; list them in promotion order")
		return raw
	}
	list := deref(v.value)
	switch {
	case list.Kind != yaml.SequenceNode:
		p.errorf(v.value, "environments", "want a list, got %s", describe(list))
	case len(list.Content) == 0:
		p.errorf(v.value, "environments", "empty; list at least one, in promotion order")
	}
	if list.Kind == yaml.SequenceNode {
		for i, item := range list.Content {
			if e, ok := p.environment(item, fmt.Sprintf("environments[%d]", i)); ok {
				raw.envs = append(raw.envs, e)
			}
		}
	}
	return raw
}

func (p *parser) version(n *yaml.Node) {
	d := deref(n)
	var v int64
	if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!int" || d.Decode(&v) != nil {
		p.errorf(n, "version", "want 1, got %s", describe(d))
		return
	}
	if v != 1 {
		p.errorf(n, "version", "%s is not a version this ferry reads; want 1", d.Value)
	}
}

func (p *parser) environment(n *yaml.Node, where string) (rawEnv, bool) {
	d := deref(n)
	if d.Kind != yaml.MappingNode {
		hint := ""
		if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!str" {
			hint = fmt.Sprintf(`; write "- name: %s"`, d.Value)
		}
		p.errorf(n, where, "want a mapping with a name, got %s%s", describe(d), hint)
		return rawEnv{}, false
	}
	f := p.fields(d, where, envKeys)
	e := rawEnv{line: n.Line, settings: p.settings(where, f)}
	v, ok := f["name"]
	if !ok {
		p.errorf(n, where, "no name")
		return e, false
	}
	name, ok := p.str(v.value, where+".name")
	if !ok {
		return e, false
	}
	if why := checkName(name); why != "" {
		p.errorf(v.value, where+".name", "%q %s", name, why)
		return e, false
	}
	e.name, e.nameLine = name, v.value.Line
	if n.Kind == yaml.AliasNode {
		e.nameLine = n.Line // where this environment is, not the anchor's
	}
	return e, true
}

// The names of environments, as DNS labels: they end up in branch names,
// directories and perhaps host names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func checkName(s string) string {
	if len(s) > 63 || !nameRE.MatchString(s) {
		return "is not an environment name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
	}
	return ""
}

// settings reads the keys that defaults and environments share from f,
// the fields of a mapping at where.
func (p *parser) settings(where string, f map[string]field) settings {
	var s settings
	if v, ok := f["repo"]; ok {
		s.repos = p.repos(v.value, where+".repo")
	}
	if v, ok := f["branch"]; ok {
		if b, ok := p.str(v.value, where+".branch"); ok {
			if why := checkBranch(b); why != "" {
				p.errorf(v.value, where+".branch", "%q %s", b, why)
			} else {
				s.branch = &b
			}
		}
	}
	if v, ok := f["path"]; ok {
		if t, ok := p.str(v.value, where+".path"); ok {
			switch why := checkTemplate(t); {
			case why != "":
				p.errorf(v.value, where+".path", "%q %s", t, why)
			case !Template(t).HasApp() && !p.appKey:
				p.errorf(v.value, where+".path", "%q has no {app}: name the repo's one app with a top-level app: key", t)
			default:
				s.path = (*Template)(&t)
			}
		}
	}
	if v, ok := f["carry"]; ok {
		if c, ok := p.str(v.value, where+".carry"); ok {
			if c := Carry(c); c == CarryTree || c == CarryImages {
				s.carry, s.carryKey = &c, v.key
			} else {
				p.errorf(v.value, where+".carry", "%q is neither tree nor images", c)
			}
		}
	}
	if v, ok := f["policy"]; ok {
		d := deref(v.value)
		if d.Kind != yaml.MappingNode {
			p.errorf(v.value, where+".policy", "want a mapping, got %s", describe(d))
		} else if pr, ok := p.fields(d, where+".policy", policyKeys)["pullRequest"]; ok {
			s.pullRequest = p.boolean(pr.value, where+".policy.pullRequest")
		}
	}
	return s
}

func (p *parser) boolean(n *yaml.Node, where string) *bool {
	d := deref(n)
	var b bool
	if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!bool" || d.Decode(&b) != nil {
		p.errorf(n, where, "want true or false, got %s", describe(d))
		return nil
	}
	return &b
}

// repos reads one repository or a list of them.
func (p *parser) repos(n *yaml.Node, where string) []string {
	d := deref(n)
	one := func(n *yaml.Node, where string) (string, bool) {
		d := deref(n)
		if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!str" {
			p.errorf(n, where, "want a repository, got %s", describe(d))
			return "", false
		}
		if why := checkRepo(d.Value); why != "" {
			p.errorf(n, where, "%q %s", d.Value, why)
			return "", false
		}
		return d.Value, true
	}
	switch d.Kind {
	case yaml.SequenceNode:
		if len(d.Content) == 0 {
			p.errorf(n, where, "empty list; leave repo out for the repository ferry is given (--repo)")
			return nil
		}
		var out []string
		ok := true
		for i, item := range d.Content {
			r, good := one(item, fmt.Sprintf("%s[%d]", where, i))
			if !good {
				ok = false
				continue
			}
			if slices.ContainsFunc(out, func(s string) bool { return sameRepo(s, r) }) {
				p.errorf(item, fmt.Sprintf("%s[%d]", where, i), "%q is listed twice", r)
				ok = false
			}
			out = append(out, r)
		}
		if !ok {
			return nil
		}
		return out
	case yaml.ScalarNode:
		if d.ShortTag() == "!!str" {
			if r, ok := one(n, where); ok {
				return []string{r}
			}
			return nil
		}
	}
	p.errorf(n, where, "want a repository or a list of them, got %s", describe(d))
	return nil
}

func checkRepo(s string) string {
	switch {
	case s == "":
		return "is empty"
	case strings.TrimSpace(s) != s:
		return "has leading or trailing white space"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "contains a control character"
	}
	return ""
}

// checkBranch applies git's rules for branch names (git check-ref-format
// --branch), so that a bad name fails here rather than at the first push.
func checkBranch(s string) string {
	switch {
	case s == "":
		return "is empty"
	case strings.HasPrefix(s, "refs/"):
		return "starts with refs/; write the branch's short name, as in main"
	case strings.HasPrefix(s, "-"):
		return "starts with '-'"
	case s == "@":
		return `is "@", which git does not allow`
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`~^:?*[\`, r)
	}); i >= 0 {
		return fmt.Sprintf("contains %q, which git does not allow in a branch name", s[i:i+1])
	}
	for _, bad := range []string{"..", "@{", "//"} {
		if strings.Contains(s, bad) {
			return fmt.Sprintf("contains %q, which git does not allow in a branch name", bad)
		}
	}
	if strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".") {
		return "starts or ends with '/', or ends with '.', which git does not allow"
	}
	for part := range strings.SplitSeq(s, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return fmt.Sprintf("has a part %q starting with '.' or ending with .lock, which git does not allow", part)
		}
	}
	return ""
}

// resolve applies the defaults and checks what involves more than one
// environment.
func (p *parser) resolve(raw *rawConfig) *Config {
	cfg := &Config{File: p.file, App: raw.app, Environments: make([]Environment, len(raw.envs))}
	// The directory of each environment as far as the file tells: with
	// one app, all of it.
	dirOf := func(e *Environment) []string {
		segs := e.Path.resolve(e.Name)
		if cfg.App != "" {
			if i := slices.Index(segs, appVar); i >= 0 {
				segs[i] = cfg.App
			}
		}
		return segs
	}
	byName := map[string]int{}
	for i, r := range raw.envs {
		if j, ok := byName[r.name]; ok {
			p.errorAt(r.nameLine, fmt.Sprintf("environments[%d].name", i), "%q is already environments[%d]'s name (line %d)", r.name, j, raw.envs[j].line)
			continue
		}
		byName[r.name] = i
		d := raw.defaults
		e := &cfg.Environments[i]
		e.Name, e.Line = r.name, r.line
		e.Repos = r.repos
		if e.Repos == nil {
			e.Repos = slices.Clone(d.repos)
		}
		e.Branch = *cmp.Or(r.branch, d.branch, &r.name)
		e.Path = *cmp.Or(r.path, d.path, ptr(DefaultPath))
		e.PullRequest = *cmp.Or(r.pullRequest, d.pullRequest, ptr(false))
		if i == 0 {
			if r.carry != nil {
				p.errorf(r.carryKey, "environments[0].carry", "nothing is promoted into %s, the first environment; carry says what a promotion into an environment carries", r.name)
			}
			continue
		}
		// Copying each app's tree is right when only where it lives
		// changes; between different directories (overlays, say) the
		// target's own files must stay, so only images move.
		prev := &cfg.Environments[i-1]
		carry := CarryImages
		if slices.Equal(dirOf(prev), dirOf(e)) {
			carry = CarryTree
		}
		e.Carry = *cmp.Or(r.carry, d.carry, &carry)
	}
	if len(p.errs) > 0 {
		return nil
	}
	if cfg.App != "" && !slices.ContainsFunc(cfg.Environments, func(e Environment) bool { return !e.Path.HasApp() }) {
		p.errorf(raw.appNode, "app", "every path has {app}, so app: %s would mean nothing; drop it, or write the paths without {app}, as in envs/{env}", cfg.App)
		return nil
	}
	// Only environments on one branch can collide; resolving each path
	// once keeps a long list cheap.
	byBranch := map[string][]int{}
	dirs := make([][]string, len(cfg.Environments))
	for j, e := range cfg.Environments {
		dirs[j] = dirOf(&e)
		for _, i := range byBranch[e.Branch] {
			p.collision(cfg, dirs, i, j)
		}
		byBranch[e.Branch] = append(byBranch[e.Branch], j)
	}
	return cfg
}

// collision records an error when environments i and j (i < j), on one
// branch, can name one directory of one repository for the same app: a
// promotion between them would write where it reads. dirs are their
// resolved paths.
func (p *parser) collision(cfg *Config, dirs [][]string, i, j int) {
	a, b := &cfg.Environments[i], &cfg.Environments[j]
	repo := "the same repository"
	if len(a.Repos) > 0 || len(b.Repos) > 0 {
		// An environment without repo is in the repository ferry is
		// given, which this package does not know: compare only the named.
		shared := ""
		for _, r := range b.Repos {
			if slices.ContainsFunc(a.Repos, func(s string) bool { return sameRepo(r, s) }) {
				shared = r
				break
			}
		}
		if shared == "" {
			return
		}
		repo = shared
	}
	dir, app, ok := overlap(dirs[i], dirs[j])
	if !ok {
		return
	}
	where := fmt.Sprintf("environments[%d] (%s)", j, b.Name)
	if app == "" {
		p.errorAt(b.Line, where, "the same directory as environments[%d] (%s, line %d), %s on branch %s of %s, so a promotion would write where it reads; give each its own branch or put {env} in the path", i, a.Name, a.Line, dir, b.Branch, repo)
		return
	}
	p.errorAt(b.Line, where, "the same directory as environments[%d] (%s, line %d) for app %q, %s on branch %s of %s, so a promotion would write where it reads", i, a.Name, a.Line, app, dir, b.Branch, repo)
}

// sameRepo compares repositories as written, give or take a trailing
// slash or .git.
func sameRepo(a, b string) bool {
	norm := func(s string) string { return strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git") }
	return norm(a) == norm(b)
}

// overlap reports whether two resolved templates give one directory for
// the same app: for every app when they are equal (app is "" and dir holds
// {app}), or for at most one app when {app} sits at different depths
// (apps/{app}/x and apps/x/{app} meet at apps/x/x, app "x").
func overlap(ra, rb []string) (dir, app string, ok bool) {
	if len(ra) != len(rb) {
		return "", "", false
	}
	i, j := slices.Index(ra, appVar), slices.Index(rb, appVar)
	for k := range ra {
		if k != i && k != j && ra[k] != rb[k] {
			return "", "", false
		}
	}
	if i == j {
		return strings.Join(ra, "/"), "", true
	}
	if rb[i] != ra[j] {
		return "", "", false
	}
	app = ra[j]
	dir = strings.Join(slices.Replace(slices.Clone(ra), i, i+1, app), "/")
	return dir, app, true
}

func ptr[T any](v T) *T { return &v }
