package ferry

import (
	"fmt"
	"strings"

	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/go-git/go-git/v5/plumbing"
)

// FieldError is a request that cannot be carried out as asked: a field
// missing, malformed, or at odds with another. It names the request's
// fields (Env, Images, Path, ...); Error writes them so, and a caller with
// names of its own for them, such as the CLI's flags, uses Format. No
// retry helps: the request itself must change.
type FieldError struct {
	Field  string // the field at fault, e.g. "Env"
	format string // what is wrong, with fields written {Env}
	args   []any
}

func fieldErrorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, format: format, args: args}
}

// Error says what is wrong, naming fields as the request does.
func (e *FieldError) Error() string { return e.Format(func(f string) string { return f }) }

// Format says what is wrong with each field named by name(field).
func (e *FieldError) Format(name func(field string) string) string {
	var b strings.Builder
	rest := e.format
	for {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest[i+1:], '}')
		if i < 0 || j < 0 {
			break
		}
		b.WriteString(rest[:i])
		b.WriteString(name(rest[i+1 : i+1+j]))
		rest = rest[i+1+j+1:]
	}
	b.WriteString(rest)
	return fmt.Sprintf(b.String(), e.args...)
}

// Validate checks the request and puts Path in the form every operation
// works with and records ("apps/hello/" is "apps/hello").
func (r *DeployRequest) Validate() error {
	if strings.TrimSpace(r.Env) == "" {
		return fieldErrorf("Env", "{Env} is required (the branch to deploy to, e.g. candidate)")
	}
	if len(r.Images) == 0 {
		return fieldErrorf("Images", "{Images} is required (e.g. {Images} us-docker.pkg.dev/acme/apps/hello:abc1234)")
	}
	for _, img := range r.Images {
		if strings.TrimSpace(img) == "" {
			return fieldErrorf("Images", "{Images} is empty")
		}
		if _, err := ref.Parse(img); err != nil {
			return fieldErrorf("Images", "{Images}: %v", err)
		}
	}
	if len(r.Policies) > len(r.Images) {
		return fieldErrorf("Policies", "%d {Policies} for %d {Images}: give each policy after the image it pins", len(r.Policies), len(r.Images))
	}
	for _, p := range r.Policies {
		if ns, name, ok := strings.Cut(p, ":"); !ok || ns == "" || name == "" || strings.Contains(name, ":") {
			return fieldErrorf("Policies", "{Policies} %q is not NAMESPACE:NAME (a Flux ImagePolicy)", p)
		}
	}
	if err := checkBranch("Env", r.Env); err != nil {
		return err
	}
	return cleanPath(&r.Path)
}

// Validate checks the request and cleans Path, as DeployRequest's does.
func (r *PromoteRequest) Validate() error {
	switch {
	case strings.TrimSpace(r.From) == "":
		return fieldErrorf("From", "{From} is required (the verified environment, e.g. candidate)")
	case strings.TrimSpace(r.To) == "":
		return fieldErrorf("To", "{To} is required (the environment to update, e.g. production)")
	case r.From == r.To && r.FromRepo == "" && (r.FromPath == "" || r.FromPath == r.Path):
		return fieldErrorf("To", "{From} and {To} are both %q; promote carries one environment's state to another", r.From)
	case r.Carry != "" && r.Carry != CarryTree && r.Carry != CarryImages:
		return fieldErrorf("Carry", "{Carry} %q: carry %s or %s", r.Carry, CarryTree, CarryImages)
	}
	if r.FromPath != "" {
		if err := cleanPathField("FromPath", &r.FromPath); err != nil {
			return err
		}
	}
	if err := checkBranch("From", r.From); err != nil {
		return err
	}
	if err := checkBranch("To", r.To); err != nil {
		return err
	}
	if r.Commit != "" && !isHexPrefix(r.Commit) {
		return fieldErrorf("Commit", "{Commit} %q is not a commit SHA (7 to 40 hex digits)", r.Commit)
	}
	return cleanPath(&r.Path)
}

// Validate checks the request, cleans Path, and makes Steps 1 when neither
// To nor Steps is given.
func (r *RollbackRequest) Validate() error {
	switch {
	case strings.TrimSpace(r.Env) == "":
		return fieldErrorf("Env", "{Env} is required (the environment to roll back, e.g. production)")
	case r.To != "" && r.Steps != 0:
		return fieldErrorf("Steps", "{To} and {Steps} both given; name the commit or count back, not both")
	case r.Steps < 0 || r.StepsSet && r.Steps == 0:
		return fieldErrorf("Steps", "{Steps} %d: count back at least 1", r.Steps)
	case r.To != "" && !isHexPrefix(r.To):
		return fieldErrorf("To", "{To} %q is not a commit SHA (7 to 40 hex digits)", r.To)
	}
	if r.To == "" && r.Steps == 0 {
		r.Steps = 1
	}
	if err := cleanPath(&r.Path); err != nil {
		return err
	}
	return checkBranch("Env", r.Env)
}

// Validate checks the request, cleans Path, and makes Limit 20 when zero.
func (r *HistoryRequest) Validate() error {
	if strings.TrimSpace(r.Env) == "" {
		return fieldErrorf("Env", "{Env} is required")
	}
	if err := cleanPath(&r.Path); err != nil {
		return err
	}
	if err := checkBranch("Env", r.Env); err != nil {
		return err
	}
	if r.Limit < 0 {
		return fieldErrorf("Limit", "{Limit} %d: must be positive", r.Limit)
	}
	if r.Limit == 0 {
		r.Limit = 20
	}
	return nil
}

// Validate checks the request and cleans Path.
func (r *DiffRequest) Validate() error {
	switch {
	case strings.TrimSpace(r.From) == "" || strings.TrimSpace(r.To) == "":
		return fieldErrorf("From", "{From} and {To} are required")
	case r.From == r.To && r.FromRepo == "" && (r.FromPath == "" || r.FromPath == r.Path):
		return fieldErrorf("To", "{From} and {To} are both %q", r.From)
	case r.Carry != "" && r.Carry != CarryTree && r.Carry != CarryImages:
		return fieldErrorf("Carry", "{Carry} %q: carry %s or %s", r.Carry, CarryTree, CarryImages)
	}
	if err := cleanPath(&r.Path); err != nil {
		return err
	}
	if r.FromPath != "" {
		if err := cleanPathField("FromPath", &r.FromPath); err != nil {
			return err
		}
	}
	for _, f := range []string{"From", "To"} {
		b := r.From
		if f == "To" {
			b = r.To
		}
		if err := checkBranch(f, b); err != nil {
			return err
		}
	}
	return nil
}

// cleanPath checks a Path and rewrites it to the form every operation
// works with and records ("apps/hello/" is "apps/hello").
func cleanPath(p *string) error { return cleanPathField("Path", p) }

func cleanPathField(field string, p *string) error {
	clean, err := envrepo.NormalScope(*p)
	if err != nil {
		return fieldErrorf(field, "{%s}: %v", field, err)
	}
	*p = clean
	return nil
}

// scopeError is a scope the branch itself refuses (a symbolic link, a
// file): a fault of the request's Path, found only once the branch is read.
func scopeError(err error) error { return fieldErrorf("Path", "%v", err) }

// checkBranch refuses names git cannot have as branches, and full ref names
// (ferry takes the branch name, as the environment is named).
func checkBranch(field, b string) error {
	if strings.HasPrefix(b, "refs/") {
		return fieldErrorf(field, "{"+field+"} %q: give the branch name, %q", b, b[strings.LastIndexByte(b, '/')+1:])
	}
	if err := plumbing.NewBranchReferenceName(b).Validate(); err != nil || strings.HasPrefix(b, "-") {
		return fieldErrorf(field, "{"+field+"} %q is not a valid branch name", b)
	}
	return nil
}

func isHexPrefix(s string) bool {
	if len(s) < 7 || len(s) > 40 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
