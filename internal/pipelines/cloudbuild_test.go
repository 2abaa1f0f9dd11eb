package pipelines

// A Cloud Build executor for the test: it reads a build config, computes
// the substitutions as Cloud Build does, and runs each step, ferry's with
// the binary the Dockerfile builds and every other kind through the table
// cbKinds, which says why it cannot run here and what stands in for it.

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// cbConfig is a build config file (cloud.google.com/build/docs/build-config-file-schema).
type cbConfig struct {
	Steps            []cbStep          `json:"steps"`
	Images           []string          `json:"images"`
	Substitutions    map[string]string `json:"substitutions"`
	Options          cbOptions         `json:"options"`
	AvailableSecrets *struct {
		SecretManager []struct {
			VersionName string `json:"versionName"`
			Env         string `json:"env"`
		} `json:"secretManager"`
	} `json:"availableSecrets"`
	Timeout        string   `json:"timeout"`
	Tags           []string `json:"tags"`
	ServiceAccount string   `json:"serviceAccount"`
	LogsBucket     string   `json:"logsBucket"`
}

type cbOptions struct {
	AutomapSubstitutions bool       `json:"automapSubstitutions"`
	DynamicSubstitutions bool       `json:"dynamicSubstitutions"`
	SubstitutionOption   string     `json:"substitutionOption"`
	Logging              string     `json:"logging"`
	MachineType          string     `json:"machineType"`
	Env                  []string   `json:"env"`
	SecretEnv            []string   `json:"secretEnv"`
	Volumes              []cbVolume `json:"volumes"`
}

type cbVolume struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

type cbStep struct {
	ID                   string     `json:"id"`
	Name                 string     `json:"name"`
	Entrypoint           string     `json:"entrypoint"`
	Args                 []string   `json:"args"`
	Env                  []string   `json:"env"`
	SecretEnv            []string   `json:"secretEnv"`
	Dir                  string     `json:"dir"`
	Script               string     `json:"script"`
	WaitFor              []string   `json:"waitFor"`
	Volumes              []cbVolume `json:"volumes"`
	Timeout              string     `json:"timeout"`
	AutomapSubstitutions *bool      `json:"automapSubstitutions"`
}

// cbBuiltins are Cloud Build's default substitutions. A trigger that lacks
// one (TAG_NAME on a branch push, COMMIT_SHA on a manual build) gives "".
var cbBuiltins = []string{
	"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "TRIGGER_NAME",
	"COMMIT_SHA", "REVISION_ID", "SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME",
	"BRANCH_NAME", "TAG_NAME", "REF_NAME", "TRIGGER_BUILD_CONFIG_PATH",
	"SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT",
}

var (
	cbUserName = regexp.MustCompile(`^_[A-Z0-9_]+$`)
	cbName     = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*`)
)

// cbExpand replaces $NAME and ${NAME} in s with lookup(NAME) and $$ with
// $, Cloud Build's template syntax. A lone $ or a bash expansion such as
// ${X:-y} is an error: Cloud Build would reject or misread it.
func cbExpand(s string, lookup func(string) (string, error)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		rest := s[i+1:]
		var name string
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			i++
			continue
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", fmt.Errorf("%q: unterminated ${", s)
			}
			name = rest[1:end]
			if cbName.FindString(name) != name {
				return "", fmt.Errorf("%q: ${%s}: only ${NAME} is modelled", s, name)
			}
			i += end + 1
		default:
			name = cbName.FindString(rest)
			if name == "" {
				return "", fmt.Errorf("%q: a lone $ (write $$ for a literal $)", s)
			}
			i += len(name)
		}
		v, err := lookup(name)
		if err != nil {
			return "", fmt.Errorf("%q: %v", s, err)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// cbTrigger is what starts a build: its built-in values and the user
// substitutions the trigger sets.
type cbTrigger struct {
	Builtins map[string]string
	Subs     map[string]string
}

// cbSubst holds a build's substitution values and which were used.
type cbSubst struct {
	vals map[string]string
	used map[string]bool
}

// newCBSubst computes the values as Cloud Build does: built-ins from the
// trigger, user substitutions from the file's defaults overridden by the
// trigger, and with options.dynamicSubstitutions, user values that refer to
// built-ins or other substitutions expanded.
func newCBSubst(cfg *cbConfig, trig cbTrigger) (*cbSubst, error) {
	s := &cbSubst{vals: map[string]string{}, used: map[string]bool{}}
	for _, k := range cbBuiltins {
		s.vals[k] = trig.Builtins[k]
	}
	for k := range trig.Builtins {
		if _, ok := s.vals[k]; !ok {
			return nil, fmt.Errorf("the trigger sets %s, which is not a built-in substitution", k)
		}
	}
	user := map[string]string{}
	for k, v := range cfg.Substitutions {
		user[k] = v
	}
	for k, v := range trig.Subs {
		user[k] = v
	}
	for k := range user {
		if !cbUserName.MatchString(k) {
			return nil, fmt.Errorf("substitution %s: user substitutions must match _[A-Z0-9_]+", k)
		}
	}
	done := map[string]bool{}
	var resolve func(k string, depth int) (string, error)
	resolve = func(k string, depth int) (string, error) {
		if done[k] || !cfg.Options.DynamicSubstitutions {
			return user[k], nil
		}
		if depth > len(user) {
			return "", fmt.Errorf("substitution %s refers to itself", k)
		}
		v, err := cbExpand(user[k], func(name string) (string, error) {
			if _, ok := user[name]; ok {
				s.used[name] = true
				return resolve(name, depth+1)
			}
			if v, ok := s.vals[name]; ok {
				return v, nil
			}
			return "", fmt.Errorf("$%s is neither a built-in nor a substitution", name)
		})
		if err != nil {
			return "", fmt.Errorf("substitution %s: %v", k, err)
		}
		user[k], done[k] = v, true
		return v, nil
	}
	for k := range user {
		v, err := resolve(k, 0)
		if err != nil {
			return nil, err
		}
		s.vals[k] = v
	}
	return s, nil
}

// expand substitutes one template string. A name that is neither a
// built-in nor a defined substitution fails, as Cloud Build fails the build
// unless substitutionOption is ALLOW_LOOSE.
func (s *cbSubst) expand(tmpl string) (string, error) {
	return cbExpand(tmpl, func(name string) (string, error) {
		v, ok := s.vals[name]
		if !ok {
			if strings.HasPrefix(name, "_") {
				return "", fmt.Errorf("substitution %s is not defined in substitutions: nor by the trigger", name)
			}
			return "", fmt.Errorf("$%s is not a built-in substitution (write $$%s for a shell variable)", name, name)
		}
		s.used[name] = true
		return v, nil
	})
}

func (s *cbSubst) expandAll(tmpls []string) ([]string, error) {
	out := make([]string, len(tmpls))
	for i, t := range tmpls {
		v, err := s.expand(t)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// cbKind is a kind of step, told by its image: what it does and why it
// cannot run here, and what stands in for it.
type cbKind struct {
	kind    string
	match   func(image string) bool
	why     string
	standIn func(r *rig, args []string) error
}

// imageRepo strips the tag and digest from an image reference.
func imageRepo(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

func isImage(repo string) func(string) bool {
	return func(image string) bool { return imageRepo(image) == repo }
}

// isFerryImage says whether a step runs ferry's image, whatever registry
// it was copied to: its repository's last element is ferry.
func isFerryImage(image string) bool { return path.Base(imageRepo(image)) == "ferry" }

// cbKinds is every kind of step the pipelines may use. A step of any other
// kind fails the test.
var cbKinds = []cbKind{
	{kind: "ferry", match: isFerryImage},
	{kind: "docker", match: isImage("gcr.io/cloud-builders/docker"), why: "needs a Docker engine; stand-in: build records the tags, push pushes a random image to the test registry", standIn: dockerStandIn},
	{kind: "kubectl", match: isImage("gcr.io/cloud-builders/kubectl"), why: "needs a GKE cluster"},
	{kind: "gke-deploy", match: isImage("gcr.io/cloud-builders/gke-deploy"), why: "needs a GKE cluster"},
	{kind: "go", match: isImage("golang"), why: "the repository's own vet and tests (ferry's run in this very `go test`)"},
}

// dockerStandIn does what `docker build -t X` and `docker push X` leave
// behind for the next steps: X in the registry.
func dockerStandIn(r *rig, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("docker without a command")
	}
	switch args[0] {
	case "build":
		for i := 1; i < len(args); i++ {
			switch a := args[i]; {
			case a == "-t" || a == "--tag":
				if i+1 < len(args) {
					i++
					r.build(args[i])
				}
			case strings.HasPrefix(a, "--tag="):
				r.build(strings.TrimPrefix(a, "--tag="))
			}
		}
	case "login":
		// The test registry takes no login outside a job; inside one it
		// demands the job's credentials of whatever reads it.
	case "push":
		for _, ref := range args[1:] {
			if strings.HasPrefix(ref, "-") {
				return fmt.Errorf("docker push %s: not modelled", ref)
			}
			if _, err := r.push(ref); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("docker %s: not modelled", args[0])
	}
	return nil
}

// cbStepRun is what one step did.
type cbStepRun struct {
	ID, Kind string
	Args     []string
	Env      map[string]string
	Res      execResult
	Ran      bool
}

// cbBuild is a finished build.
type cbBuild struct {
	Steps  []cbStepRun
	Failed string // the step that failed, "" if none
}

func (b cbBuild) step(id string) cbStepRun {
	for _, s := range b.Steps {
		if s.ID == id {
			return s
		}
	}
	return cbStepRun{}
}

// runCloudBuild runs the build config at file (relative to the repository
// root) as its trigger would, up to the first failing step. A config
// Cloud Build would reject fails the test.
func (r *rig) runCloudBuild(t *testing.T, file string, trig cbTrigger) cbBuild {
	t.Helper()
	var cfg cbConfig
	readYAML(t, file, &cfg)
	subs, err := newCBSubst(&cfg, trig)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if cfg.Options.SubstitutionOption == "ALLOW_LOOSE" {
		t.Fatalf("%s: substitutionOption ALLOW_LOOSE would hide a misspelt substitution", file)
	}
	// Secret Manager: the secrets the build may map into a step.
	secretEnv := map[string]string{}
	if cfg.AvailableSecrets != nil {
		for _, s := range cfg.AvailableSecrets.SecretManager {
			name, err := subs.expand(s.VersionName)
			if err != nil {
				t.Fatalf("%s: availableSecrets: %v", file, err)
			}
			v, ok := r.secrets[name]
			if !ok {
				t.Fatalf("%s: secret %s does not exist", file, name)
			}
			secretEnv[s.Env] = v
		}
	}
	optEnv, err := subs.expandAll(cfg.Options.Env)
	if err != nil {
		t.Fatalf("%s: options.env: %v", file, err)
	}
	workspace := t.TempDir()
	home := t.TempDir()

	var build cbBuild
	ids := map[string]bool{}
	for i, st := range cfg.Steps {
		id := st.ID
		if id == "" {
			id = fmt.Sprintf("step #%d", i)
		}
		if ids[id] {
			t.Fatalf("%s: two steps with id %s", file, id)
		}
		ids[id] = true
		if len(st.WaitFor) > 0 {
			t.Fatalf("%s: step %s: waitFor is not modelled; the steps run in order", file, id)
		}
		image, err := subs.expand(st.Name)
		if err != nil {
			t.Fatalf("%s: step %s: name: %v", file, id, err)
		}
		args, err := subs.expandAll(st.Args)
		if err != nil {
			t.Fatalf("%s: step %s: args: %v", file, id, err)
		}
		env, err := subs.expandAll(st.Env)
		if err != nil {
			t.Fatalf("%s: step %s: env: %v", file, id, err)
		}
		for _, f := range []string{st.Entrypoint, st.Dir} {
			if _, err := subs.expand(f); err != nil {
				t.Fatalf("%s: step %s: %v", file, id, err)
			}
		}
		if st.Script != "" {
			t.Fatalf("%s: step %s: script: is not modelled", file, id)
		}
		var kind *cbKind
		for k := range cbKinds {
			if cbKinds[k].match(image) {
				kind = &cbKinds[k]
				break
			}
		}
		if kind == nil {
			t.Fatalf("%s: step %s runs %s, a kind of step this test does not know; add it to cbKinds with why it cannot run here", file, id, image)
		}
		run := cbStepRun{ID: id, Kind: kind.kind, Args: args}
		for _, name := range st.SecretEnv {
			if _, ok := secretEnv[name]; !ok {
				t.Fatalf("%s: step %s: secretEnv %s is not in availableSecrets", file, id, name)
			}
		}
		if kind.kind != "ferry" {
			r.skip(file, id, kind.kind, kind.why)
			if kind.standIn != nil {
				if err := kind.standIn(r, args); err != nil {
					t.Fatalf("%s: step %s: stand-in: %v", file, id, err)
				}
			}
			build.Steps = append(build.Steps, run)
			continue
		}

		// ferry's image: its ENTRYPOINT is /ferry, and there is no shell.
		if st.Entrypoint != "" {
			t.Fatalf("%s: step %s: ferry's image has no shell; use its entrypoint, not %q", file, id, st.Entrypoint)
		}
		run.Env = map[string]string{"HOME": home, "BUILDER_OUTPUT": filepath.Join(home, "outputs")}
		automap := cfg.Options.AutomapSubstitutions
		if st.AutomapSubstitutions != nil {
			automap = *st.AutomapSubstitutions
		}
		if automap {
			for k, v := range subs.vals {
				run.Env[k] = v
			}
		}
		for _, kv := range append(append([]string(nil), optEnv...), env...) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("%s: step %s: env %q is not KEY=VALUE", file, id, kv)
			}
			run.Env[k] = v
		}
		for _, name := range append(append([]string(nil), cfg.Options.SecretEnv...), st.SecretEnv...) {
			run.Env[name] = secretEnv[name]
		}
		dir := workspace
		if st.Dir != "" {
			dir = filepath.Join(workspace, st.Dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(ferryBin, args...)
		cmd.Dir = dir
		cmd.Env = envList(run.Env)
		run.Res = runCmd(t, cmd)
		run.Ran = true
		r.log(file, id, run.Res)
		t.Logf("%s: step %s: ferry %s\n%s%s", file, id, strings.Join(args, " "), run.Res.Stdout, run.Res.Stderr)
		build.Steps = append(build.Steps, run)
		if run.Res.Code != 0 {
			build.Failed = id
			return build
		}
	}

	// images: Cloud Build pushes them after the last step.
	images, err := subs.expandAll(cfg.Images)
	if err != nil {
		t.Fatalf("%s: images: %v", file, err)
	}
	for _, img := range images {
		r.mu.Lock()
		_, done := r.pushed[img]
		r.mu.Unlock()
		if !done {
			if _, err := r.push(img); err != nil {
				t.Fatalf("%s: images: %v", file, err)
			}
		}
	}

	// Cloud Build refuses a substitution the template never uses.
	var unused []string
	for k := range subs.vals {
		if strings.HasPrefix(k, "_") && !subs.used[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Fatalf("%s: substitutions defined but never used: %s", file, strings.Join(unused, ", "))
	}
	return build
}
