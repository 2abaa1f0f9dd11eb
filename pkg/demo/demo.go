// Package demo runs ferry's whole flow offline, on an embedded default: an
// in-process OCI registry on 127.0.0.1 and a local bare env repo. It is what
// `ferry demo` runs and what the README's first command shows.
package demo

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/config"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/image"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options adjust the demo.
type Options struct {
	// Dir keeps the env repo (Dir/env.git) after the run; empty means a
	// temporary directory that is removed.
	Dir    string
	Logger *slog.Logger
}

// The env repo the demo starts from: a ferry.yaml naming its environments,
// one app with a kustomize overlay, and a second app that must stay
// untouched. candidate and production both start at this one commit.
var files = map[string]string{
	"README.md": "# environments\n\nEach branch is an environment; ferry writes to it.\n",
	config.FileName: `# The environments, in promotion order: each a branch of this repo.
version: 1
defaults:
  path: apps/{app}
environments:
  - name: candidate
  - name: production
`,
	"apps/hello/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
images:
  - name: hello # the name used in deployment.yaml
    newName: {{.Registry}}/demo/hello
    newTag: v0
`,
	"apps/hello/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels:
      app: hello
  template:
    metadata:
      labels:
        app: hello
    spec:
      containers:
        - name: hello
          image: hello # set by the kustomization's images: entry

          ports:
            - containerPort: 8080
`,
	"apps/hello/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector:
    app: hello
  ports:
    - port: 80
      targetPort: 8080
`,
	"apps/worker/cronjob.yaml": `apiVersion: batch/v1
kind: CronJob
metadata:
  name: worker
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: worker
              image: "{{.Registry}}/demo/worker:v7" # not deployed by the demo
`,
}

// Run prints each step to out.
func Run(ctx context.Context, out io.Writer, opts Options) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "ferry-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	st := &story{out: out}

	reg, stop, err := startRegistry()
	if err != nil {
		return err
	}
	defer stop()
	st.step("registry: serving an in-process OCI registry at %s", reg)

	st.repo = reg + "/demo/hello"
	for i, tag := range []string{"v1", "v2"} {
		d, err := pushImage(ctx, st.repo+":"+tag, time.Date(2026, 11, 1+i, 12, 0, 0, 0, time.UTC))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "    pushed %s:%s  %s\n", st.repo, tag, d)
	}

	st.envDir = filepath.Join(dir, "env.git")
	if err := createEnvRepo(st.envDir, reg); err != nil {
		return err
	}
	st.step("env repo: %s with branches candidate and production", st.envDir)
	for _, f := range sortedKeys(files) {
		fmt.Fprintf(out, "    %s\n", f)
	}

	st.env = ferry.Env{
		Remote:   envrepo.Remote{URL: st.envDir},
		Author:   envrepo.Author{Name: "ferry demo", Email: "demo@ferry.invalid"},
		Resolver: image.NewResolver(image.WithLogger(logger)),
		Logger:   logger,
	}
	if err := st.tell(ctx); err != nil {
		return err
	}
	if err := st.status(ctx, opts.Dir); err != nil {
		return err
	}
	if opts.Dir != "" {
		fmt.Fprintf(out, "\nThe env repo is kept at %[1]s; try:\n"+
			"    ferry status --repo %[1]s\n"+
			"    ferry history --repo %[1]s --env production --app hello\n"+
			"    git -C %[1]s log --format='%%h %%s%%n%%(trailers)' production\n", st.envDir)
	}
	return nil
}

// story is the demo's narration over one registry and env repo.
type story struct {
	out    io.Writer
	env    ferry.Env
	repo   string // the image repository
	envDir string
}

func (st *story) step(format string, args ...any) {
	fmt.Fprintf(st.out, "\n==> "+format+"\n", args...)
}

func (st *story) deploy(ctx context.Context, tag, commit string) (*ferry.Report, error) {
	st.step("ferry deploy --env candidate --path apps/hello --image %s:%s", st.repo, tag)
	rep, err := ferry.Deploy(ctx, st.env, ferry.DeployRequest{
		Env: "candidate", Path: "apps/hello", Images: []string{st.repo + ":" + tag},
		Provenance: ferry.Provenance{SourceRepo: "https://github.com/acme/hello", SourceCommit: commit, BuildID: "demo-" + tag},
	})
	if err != nil {
		return nil, err
	}
	printReport(st.out, rep)
	return rep, nil
}

func (st *story) promote(ctx context.Context, commit string) error {
	c := "(tip)"
	if commit != "" {
		c = commit[:12]
	}
	st.step("ferry promote --from candidate --to production --path apps/hello --commit %s", c)
	rep, err := ferry.Promote(ctx, st.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: commit, Path: "apps/hello"})
	if err != nil {
		return err
	}
	printReport(st.out, rep)
	return nil
}

// tell runs the flow: deploy twice (and once more, a no-op), promote the
// verified commit, diff, promote the tip, roll back, meet the hold, and
// read the history.
func (st *story) tell(ctx context.Context) error {
	v1, err := st.deploy(ctx, "v1", "1111111111111111111111111111111111111111")
	if err != nil {
		return err
	}
	for range 2 {
		if _, err := st.deploy(ctx, "v2", "2222222222222222222222222222222222222222"); err != nil {
			return err
		}
	}
	st.step("git log candidate (the trailers are the audit trail)")
	if err := printLog(st.out, st.envDir, "candidate"); err != nil {
		return err
	}
	fmt.Fprintf(st.out, "\n    (candidate has moved on to v2, but only v1 was verified: promote exactly that commit)\n")
	if err := st.promote(ctx, v1.Commit); err != nil {
		return err
	}
	st.step("ferry diff --from candidate --to production --path apps/hello")
	d, err := ferry.Diff(ctx, st.env, ferry.DiffRequest{From: "candidate", To: "production", Path: "apps/hello"})
	if err != nil {
		return err
	}
	ferry.WriteDiff(indent(st.out), d, false)
	if err := st.promote(ctx, ""); err != nil {
		return err
	}

	st.step("ferry rollback --env production --path apps/hello   (v2 misbehaves)")
	rep, err := ferry.Rollback(ctx, st.env, ferry.RollbackRequest{Env: "production", Path: "apps/hello"})
	if err != nil {
		return err
	}
	printReport(st.out, rep)

	st.step("ferry promote --from candidate --to production --path apps/hello   (the rollback holds)")
	if _, err := ferry.Promote(ctx, st.env, ferry.PromoteRequest{From: "candidate", To: "production", Path: "apps/hello"}); err == nil {
		return fmt.Errorf("the promote during a rollback hold was not refused")
	} else {
		fmt.Fprintf(st.out, "    refused: %v\n", err)
	}

	st.step("ferry history --env production --path apps/hello")
	entries, err := ferry.History(ctx, st.env, ferry.HistoryRequest{Env: "production", Path: "apps/hello"})
	if err != nil {
		return err
	}
	ferry.WriteHistory(indent(st.out), entries)
	return nil
}

// status shows what runs where, from the ferry.yaml on the env repo's
// default branch as `ferry status` reads it: the table, then the page,
// written to status.html in dir, or when dir is empty to a temporary file
// that outlives the demo's other temporary files: the point is to open it.
func (st *story) status(ctx context.Context, dir string) error {
	st.step("ferry status   (what runs where, by the repo's ferry.yaml)")
	data, err := envrepo.ReadFile(ctx, st.env.Remote, "", config.FileName)
	if err != nil {
		return fmt.Errorf("reading %s: %w", config.FileName, err)
	}
	cfg, err := config.Parse(config.FileName, data)
	if err != nil {
		return err
	}
	rep, err := ferry.Status(ctx, st.env, ferry.StatusRequest{Config: cfg})
	if err != nil {
		return err
	}
	ferry.WriteStatus(indent(st.out), rep, false)
	page, err := writePage(dir, rep)
	if err != nil {
		return err
	}
	fmt.Fprintf(st.out, "\n    ferry status --output html: open %s in a browser\n", fileURL(page))
	return nil
}

// writePage writes the status page to dir/status.html, or to a new
// temporary file when dir is empty, and returns the file's name.
func writePage(dir string, rep *ferry.StatusReport) (string, error) {
	var f *os.File
	var err error
	if dir == "" {
		f, err = os.CreateTemp("", "ferry-demo-status-*.html")
	} else {
		f, err = os.Create(filepath.Join(dir, "status.html"))
	}
	if err != nil {
		return "", fmt.Errorf("creating the status page: %w", err)
	}
	err = ferry.WriteStatusHTML(f, rep)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// fileURL is path as a file:// URL.
func fileURL(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // C:/x on Windows
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}

// indent prefixes every line written through it, to set command output
// apart from the demo's narration.
func indent(w io.Writer) io.Writer { return &indenter{w: w, bol: true} }

type indenter struct {
	w   io.Writer
	bol bool
}

func (i *indenter) Write(p []byte) (int, error) {
	var b []byte
	for _, c := range p {
		if i.bol && c != '\n' {
			b = append(b, "    "...)
		}
		b = append(b, c)
		i.bol = c == '\n'
	}
	if _, err := i.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

func printReport(out io.Writer, rep *ferry.Report) {
	if !rep.Changed {
		fmt.Fprintf(out, "    nothing to do: %s (no commit, no push)\n", rep.Reason)
		return
	}
	fmt.Fprintf(out, "    commit %s on %s (attempts: %d)\n", rep.Commit, rep.Branch, rep.Attempts)
	if rep.From != "" {
		fmt.Fprintf(out, "    promoted from %s\n", rep.From)
	}
	if rep.RollbackTo != "" {
		fmt.Fprintf(out, "    restored the state of %s\n", rep.RollbackTo)
	}
	for _, img := range rep.Images {
		fmt.Fprintf(out, "    pinned %s\n", img.Ref)
	}
	for _, line := range strings.Split(strings.TrimRight(rep.Diff, "\n"), "\n") {
		fmt.Fprintf(out, "    %s\n", line)
	}
}

func printLog(out io.Writer, dir, branch string) error {
	r, err := git.PlainOpen(dir)
	if err != nil {
		return err
	}
	ref, err := r.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return err
	}
	iter, err := r.Log(&git.LogOptions{From: ref.Hash()})
	if err != nil {
		return err
	}
	return iter.ForEach(func(c *object.Commit) error {
		fmt.Fprintf(out, "\n    commit %s\n    Author: %s <%s>\n", c.Hash, c.Author.Name, c.Author.Email)
		for _, line := range strings.Split(strings.TrimRight(c.Message, "\n"), "\n") {
			fmt.Fprintf(out, "        %s\n", line)
		}
		rec := audit.Parse(c.Message)
		if rec.Action == audit.ActionManual {
			fmt.Fprintf(out, "        (not made by ferry)\n")
		}
		return nil
	})
}

func startRegistry() (host string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("starting the demo registry: %w", err)
	}
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	return l.Addr().String(), func() { srv.Close() }, nil
}

// pushImage pushes a small random image whose config records created, as a
// real build would.
func pushImage(ctx context.Context, ref string, created time.Time) (v1.Hash, error) {
	img, err := random.Image(512, 1)
	if err != nil {
		return v1.Hash{}, err
	}
	if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
		return v1.Hash{}, err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	return img.Digest()
}

// createEnvRepo writes a bare repo with go-git alone, so the demo needs no
// git binary.
func createEnvRepo(dir, reg string) error {
	r, err := git.PlainInit(dir, true)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	st := r.Storer
	root := map[string]any{}
	for p, content := range files {
		var b strings.Builder
		if err := template.Must(template.New(p).Parse(content)).Execute(&b, map[string]string{"Registry": reg}); err != nil {
			return err
		}
		node := root
		parts := strings.Split(p, "/")
		for _, d := range parts[:len(parts)-1] {
			if node[d] == nil {
				node[d] = map[string]any{}
			}
			node = node[d].(map[string]any)
		}
		node[parts[len(parts)-1]] = b.String()
	}
	tree, err := writeTree(st, root)
	if err != nil {
		return err
	}
	sig := object.Signature{Name: "platform team", Email: "platform@example.com", When: time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)}
	c := &object.Commit{Author: sig, Committer: sig, Message: "Initial environments\n", TreeHash: tree}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return err
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return err
	}
	for _, b := range []string{"candidate", "production"} {
		if err := st.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(b), h)); err != nil {
			return err
		}
	}
	return st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("candidate")))
}

func writeTree(st storer.EncodedObjectStorer, node map[string]any) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	for _, n := range sortedKeys(node) {
		switch v := node[n].(type) {
		case string:
			obj := st.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, _ := obj.Writer()
			if _, err := io.WriteString(w, v); err != nil {
				return plumbing.ZeroHash, err
			}
			w.Close()
			h, err := st.SetEncodedObject(obj)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries = append(entries, object.TreeEntry{Name: n, Mode: filemode.Regular, Hash: h})
		case map[string]any:
			h, err := writeTree(st, v)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries = append(entries, object.TreeEntry{Name: n, Mode: filemode.Dir, Hash: h})
		}
	}
	// Names here never collide with "name/" ordering, but sort as git does.
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i].Name, entries[j].Name
		if entries[i].Mode == filemode.Dir {
			a += "/"
		}
		if entries[j].Mode == filemode.Dir {
			b += "/"
		}
		return a < b
	})
	obj := st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
