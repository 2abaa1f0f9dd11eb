package main

import (
	"context"
	"github.com/ferrycd/ferry/internal/testenv"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/pkg/audit"
)

// The plan: commits on dev (every 20th by hand), a third as many promotes
// on staging and a sixth on production, each promote carrying what its
// source deployed, with trailers that audit.Parse reads back.
func TestPlanStatus(t *testing.T) {
	const host = "127.0.0.1:5000"
	p := planStatus(40, 60, host)
	if got := []int{len(p.branches[0]), len(p.branches[1]), len(p.branches[2])}; !slices.Equal(got, []int{60, 20, 10}) {
		t.Fatalf("commits per branch: %v, want [60 20 10]", got)
	}
	image := regexp.MustCompile(`^127\.0\.0\.1:5000/team/app\d{4}:v\d+@sha256:[0-9a-f]{64}$`)
	for e, commits := range p.branches {
		var last int64
		for i, c := range commits {
			if c.when <= last {
				t.Errorf("%s commit %d: time %d not after %d", statusEnvs[e], i+1, c.when, last)
			}
			last = c.when
			if e == 0 && (c.rec == nil) != ((i+1)%20 == 0) {
				t.Errorf("dev commit %d: by hand %v, want every 20th", i+1, c.rec == nil)
			}
			if c.rec == nil {
				continue
			}
			rec := audit.Parse(c.rec.Format(""))
			wantAction := audit.ActionDeploy
			if e > 0 {
				wantAction = audit.ActionPromote
			}
			if rec.Action != wantAction || rec.Env != statusEnvs[e] || rec.App != c.after.App || rec.Path != "apps/"+c.after.App {
				t.Errorf("%s commit %d: trailers %+v", statusEnvs[e], i+1, rec)
			}
			if len(rec.Images) != 1 || !image.MatchString(rec.Images[0]) || rec.Images[0] != imageRef(c.after) {
				t.Errorf("%s commit %d: images %q, want one like HOST/team/appNNNN:vK@sha256:...", statusEnvs[e], i+1, rec.Images)
			}
			if e > 0 {
				src := p.branches[e-1][c.from-1]
				if src.rec == nil || src.app != c.app || imageRef(src.after) != imageRef(c.after) {
					t.Errorf("%s commit %d promotes %d, which is not a ferry commit of the same image", statusEnvs[e], i+1, c.from)
				}
				if c.when <= src.when {
					t.Errorf("%s commit %d lands before its source", statusEnvs[e], i+1)
				}
			}
		}
	}
	// What each branch ends with: production runs what staging ran.
	prod := p.final(2)
	for _, c := range p.branches[2] {
		if prod[c.app].Digest == "" {
			t.Errorf("%s promoted to production has no digest", c.after.App)
		}
	}
}

// A digest is written under newTag only when set; without one the
// kustomization is byte for byte what it was.
func TestRenderDigest(t *testing.T) {
	s := newAppSpec(10, 3, "reg")
	plain := string(render("kustomization.yaml", s))
	if strings.Contains(plain, "digest:") || !strings.HasSuffix(plain, "    newTag: v1\n") {
		t.Errorf("without a digest:\n%s", plain)
	}
	s.Digest = fakeDigest("x")
	pinned := string(render("kustomization.yaml", s))
	if pinned != plain+"    digest: "+s.Digest+"\n" {
		t.Errorf("with a digest:\n%s", pinned)
	}
}

// generateStatus writes the three branches from one root, HEAD on dev
// with ferry.yaml, and each promote names its source's sha.
func TestGenerateStatus(t *testing.T) {
	testenv.LookPath(t, "git", "Debian: apt-get install git; .ci/run installs it")
	ctx := context.Background()
	bare := filepath.Join(t.TempDir(), "env.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "dev", bare).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	p := planStatus(12, 12, "reg")
	counts, err := generateStatus(ctx, bare, p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(counts, []int{13, 5, 3}) {
		t.Errorf("commits: %v, want [13 5 3]", counts)
	}
	yaml, err := gitOutput(ctx, bare, "show", "HEAD:ferry.yaml")
	if err != nil || !strings.Contains(yaml, "- name: production") {
		t.Errorf("HEAD:ferry.yaml: %v\n%s", err, yaml)
	}
	roots, err := gitOutput(ctx, bare, "rev-list", "--max-parents=0", "dev", "staging", "production")
	if err != nil || len(strings.Fields(roots)) != 1 {
		t.Errorf("roots of the three branches: %v %q, want one", err, roots)
	}
	msg, err := gitOutput(ctx, bare, "log", "-1", "--format=%B", "production")
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.Parse(msg)
	sha, ok := strings.CutPrefix(rec.PromotedFrom, "staging@")
	if !ok || len(sha) != 40 {
		t.Fatalf("production's tip promoted from %q", rec.PromotedFrom)
	}
	if _, err := gitOutput(ctx, bare, "merge-base", "--is-ancestor", sha, "staging"); err != nil {
		t.Errorf("%s is not on staging: %v", sha, err)
	}
	// The promote carried the directory: the app's tree is staging's at the source.
	app := "apps/" + rec.App
	a, _ := gitOutput(ctx, bare, "rev-parse", "production:"+app)
	b, _ := gitOutput(ctx, bare, "rev-parse", sha+":"+app)
	if a == "" || a != b {
		t.Errorf("%s on production is %s, on staging at %s %s", app, a, sha, b)
	}
}
