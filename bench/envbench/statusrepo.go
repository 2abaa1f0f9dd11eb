package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ferrycd/ferry/pkg/audit"
)

// statusEnvs are the environment branches of -status, in promotion order;
// the first is the default branch and holds ferry.yaml.
var statusEnvs = []string{"dev", "staging", "production"}

const statusFerryYAML = `# ferry.yaml
version: 1
environments:          # in promotion order; branch = name, path apps/{app}
  - name: dev
  - name: staging
  - name: production
`

// statusPlan is the history of a -status env repo, decided before a byte
// is written: a root commit with every app, shared by the three branches,
// then each branch's commits, oldest first.
type statusPlan struct {
	n        int
	base     []appSpec      // the apps as the root commit has them
	branches [][]planCommit // one per statusEnvs
}

// planCommit is one commit after the root.
type planCommit struct {
	when int64 // committer time, Unix seconds
	app  int
	// after is the app as the commit leaves it; files are those of its
	// files the commit writes.
	after appSpec
	files []string
	// rec is the commit's trailers; nil for a commit by hand, whose
	// subject is manual.
	rec    *audit.Record
	manual string
	// from is, for a promote, the commit of the branch before whose sha
	// goes into Ferry-Promoted-From (1-based, as on that branch).
	from int
}

const statusEpoch = 1767225600 // 2026-01-01

// planStatus plans n apps with commits on dev: ferry deploys of one app
// each (half of them to the hottest tenth of the apps), every 20th a
// config change by hand; commits/3 promotes to staging, each of what dev's
// every third commit ran; commits/6 promotes to production, each of what
// staging's every second commit ran. Times interleave as the promotions
// would: each after its source.
func planStatus(n, commits int, host string) statusPlan {
	p := statusPlan{n: n, base: make([]appSpec, n), branches: make([][]planCommit, len(statusEnvs))}
	for i := range p.base {
		p.base[i] = newAppSpec(n, i, host)
	}
	version := make([]int, n) // the last vK deployed; v1 is the root's
	for i := range version {
		version[i] = 1
	}
	dev := slices.Clone(p.base)
	for i := 1; i <= commits; i++ {
		r := rand.New(rand.NewPCG(uint64(n), uint64(i)))
		app := r.IntN(n)
		if r.IntN(2) == 0 {
			app = r.IntN(max(1, n/10))
		}
		s := &dev[app]
		c := planCommit{when: statusEpoch + int64(i)*600, app: app}
		if i%20 == 0 {
			s.ConfigRevision++
			c.files = []string{"deployment.yaml"}
			c.manual = fmt.Sprintf("%s: raise the config revision to %d\n", s.App, s.ConfigRevision)
		} else {
			version[app]++
			s.Tag = fmt.Sprintf("v%d", version[app])
			s.Digest = fakeDigest(s.App + ":" + s.Tag)
			c.files = []string{"kustomization.yaml"}
			c.rec = &audit.Record{
				Action: audit.ActionDeploy, Env: statusEnvs[0], App: s.App, Path: "apps/" + s.App,
				Images: []string{imageRef(*s)},
				Sources: []audit.Source{{
					SourceRepo:   "https://git.example.com/" + s.Team + "/" + s.App,
					SourceCommit: fakeCommit(s.App + ":" + s.Tag),
					BuildID:      fmt.Sprintf("build-%d", 40000+i),
				}},
			}
		}
		c.after = *s
		p.branches[0] = append(p.branches[0], c)
	}
	// Each later environment promotes every step-th commit of the one
	// before, carrying the app's directory whole (tree).
	for e, step := range []int{3, 2} {
		src := p.branches[e]
		for j := 1; j*step <= len(src); j++ {
			k := j * step
			if src[k-1].rec == nil {
				k-- // a change by hand: promote the deploy before it
			}
			from := src[k-1]
			s := from.after
			c := planCommit{when: from.when + 300/int64(e+1), app: from.app, after: s, files: appFiles, from: k}
			c.rec = &audit.Record{
				Action: audit.ActionPromote, Env: statusEnvs[e+1], App: s.App, Path: "apps/" + s.App,
				Sources: from.rec.Sources,
			}
			if s.Digest != "" {
				c.rec.Images = []string{imageRef(s)}
			}
			p.branches[e+1] = append(p.branches[e+1], c)
		}
	}
	return p
}

// final is every app as branch e leaves it.
func (p statusPlan) final(e int) []appSpec {
	specs := slices.Clone(p.base)
	for _, c := range p.branches[e] {
		specs[c.app] = c.after
	}
	return specs
}

// imageRef is the pinned reference ferry writes in Ferry-Image.
func imageRef(s appSpec) string {
	return s.Host + "/team/" + s.App + ":" + s.Tag + "@" + s.Digest
}

func fakeDigest(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return "sha256:" + hex.EncodeToString(h[:])
}

func fakeCommit(seed string) string {
	h := sha1.Sum([]byte(seed))
	return hex.EncodeToString(h[:])
}

// generateStatus writes p into the bare repository dir, whose HEAD is
// refs/heads/dev: the root commit and dev in one git fast-import, then
// each later branch from the root in one more, once the shas its promotes
// name are known. It returns each branch's commit count, root included.
func generateStatus(ctx context.Context, dir string, p statusPlan) ([]int, error) {
	var shas [][]string // of each branch, root first
	counts := make([]int, len(statusEnvs))
	for e, name := range statusEnvs {
		err := fastImport(ctx, dir, func(w *bufio.Writer) {
			file := func(path string, data []byte) {
				fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path, len(data), data)
			}
			commit := func(when int64, who, msg, from string) {
				fmt.Fprintf(w, "commit refs/heads/%s\ncommitter %s %d +0000\ndata %d\n%s\n", name, who, when, len(msg), msg)
				if from != "" {
					fmt.Fprintf(w, "from %s\n", from)
				}
			}
			if e == 0 {
				commit(statusEpoch, "Platform Team <platform@example.com>", fmt.Sprintf("bootstrap %d apps in dev, staging and production\n", p.n), "")
				file("ferry.yaml", []byte(statusFerryYAML))
				file("README.md", []byte("# env\n\nOne directory per app under apps/; each branch is what its environment's cluster runs.\n"))
				for _, s := range p.base {
					for _, f := range appFiles {
						file("apps/"+s.App+"/"+f, render(f, s))
					}
				}
			}
			for i, c := range p.branches[e] {
				from := ""
				if e > 0 && i == 0 {
					from = shas[0][0]
				}
				who, msg := "Deploy Bot <deploy@example.com>", c.manual
				if c.rec == nil {
					who = "Jane Doe <jane@example.com>"
				} else {
					rec := *c.rec
					if c.from > 0 {
						rec.PromotedFrom = statusEnvs[e-1] + "@" + shas[e-1][c.from]
					}
					msg = rec.Format("")
				}
				commit(c.when, who, msg, from)
				for _, f := range c.files {
					file("apps/"+c.after.App+"/"+f, render(f, c.after))
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out, err := gitOutput(ctx, dir, "rev-list", "--first-parent", "--reverse", "refs/heads/"+name)
		if err != nil {
			return nil, err
		}
		shas = append(shas, strings.Fields(out))
		counts[e] = len(shas[e])
		if want := len(p.branches[e]) + 1; counts[e] != want {
			return nil, fmt.Errorf("%s has %d commits, want %d", name, counts[e], want)
		}
	}
	return counts, repack(ctx, dir)
}
