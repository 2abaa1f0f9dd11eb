package ferry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/config"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// statusDepth is how many commits status reads of each branch by default:
// messages and trees only, a few hundred bytes a commit.
const statusDepth = 512

// timelineMax is how many events the timeline keeps per app and column.
const timelineMax = 20

// StatusRequest is one `ferry status`.
type StatusRequest struct {
	// Config declares the environments, in promotion order.
	Config *config.Config
	// Apps are the apps to report on; empty means every app found in any
	// environment. When Config names the repo's one app (Config.App), it
	// is the only app there is.
	Apps []string
	// Depth is how many commits of each branch are read; 0 means 512.
	// What lies further back is not looked at: a hold, a last change or
	// the images of a deploy older than that are not seen.
	Depth int
	// Verify checks the signature of each cell's last change against
	// Env.Verifier.
	Verify bool
}

// Validate checks the request.
func (r *StatusRequest) Validate() error {
	if r.Config == nil || len(r.Config.Environments) == 0 {
		return fieldErrorf("Config", "{Config} declares no environments; status needs ferry.yaml")
	}
	if r.Depth < 0 {
		return fieldErrorf("Depth", "{Depth} must be at least 1 (0 takes the default, %d)", statusDepth)
	}
	for _, a := range r.Apps {
		if err := config.ValidApp(a); err != nil {
			return fieldErrorf("Apps", "{Apps}: %v", err)
		}
		if one := r.Config.App; one != "" && a != one {
			return fieldErrorf("Apps", "{Apps}: %s holds one app, %s, not %s", r.Config.File, one, a)
		}
	}
	return nil
}

// StatusReport is what runs where: a row per app, a column per
// environment (one per repository of an environment that fans out).
type StatusReport struct {
	Environments []StatusEnv `json:"environments"`
	Apps         []AppStatus `json:"apps"`
	GeneratedAt  time.Time   `json:"generatedAt"`
}

// StatusEnv is one column: an environment in one repository.
type StatusEnv struct {
	Name string `json:"name"`
	// Label heads the column: the name, with the repository's base name
	// when the environment fans out to several ("production (prod-eu)").
	Label  string `json:"label"`
	Repo   string `json:"repo"` // without credentials
	Branch string `json:"branch"`
	Path   string `json:"path"` // the directory template
	Tip    string `json:"tip"`
	// Missing: the branch does not exist (yet); every cell is absent.
	Missing bool `json:"missing,omitempty"`
	// Complete: the commits read reach the branch's first; otherwise
	// only the newest Depth were read.
	Complete bool `json:"complete"`
}

// AppStatus is one row.
type AppStatus struct {
	App string `json:"app"`
	// Cells are one per environment column, in the order of Environments.
	Cells []Cell `json:"cells"`
	// Timeline is what happened to the app in every column, newest first,
	// at most 20 events per column.
	Timeline []Event `json:"timeline"`
}

// Cell states, the one word that sums a cell up (Cell.State), by
// precedence: a cell that is held and behind is "held".
const (
	StateAbsent    = "absent"    // the app has no directory there
	StateHeld      = "held"      // a rollback holds it
	StateUnmanaged = "unmanaged" // no ferry commit ever wrote it
	StateDrifted   = "drifted"   // changed by other hands since ferry wrote it
	StateUnknown   = "unknown"   // unchanged in all the commits read
	StateBehind    = "behind"    // the environment before it runs something newer
	StateCurrent   = "current"   // none of the above
)

// Cell is one app in one environment column.
type Cell struct {
	Env   string `json:"env"` // the column's label
	Path  string `json:"path"`
	State string `json:"state"`
	// LastChange is the newest commit that changed Path; nil when Path is
	// absent or unchanged in all the commits read.
	LastChange *Change `json:"lastChange,omitempty"`
	// Images run there as ferry last wrote them: for each image, the
	// Ferry-Image trailer of the newest ferry commit covering Path that
	// names it. A deploy or promote names only the images it changed.
	Images []Image `json:"images"`
	// Ferry is the newest ferry commit (deploy, promote, rollback) whose
	// Ferry-Path covers Path and that changed it; Sources and
	// PromotedFrom are its.
	Ferry        *Change        `json:"ferry,omitempty"`
	Sources      []audit.Source `json:"sources,omitempty"`
	PromotedFrom string         `json:"promotedFrom,omitempty"`
	// Drifted: Path now differs from what Ferry left; or, when no ferry
	// commit is among those read, it was changed by hand among them, or
	// no ferry commit ever wrote it (the whole history was read): then
	// Unmanaged too.
	Drifted   bool `json:"drifted,omitempty"`
	Unmanaged bool `json:"unmanaged,omitempty"`
	// Held names the rollback whose hold covers Path.
	Held *Hold `json:"held,omitempty"`
	// Behind counts the image changes the previous environment made since
	// it ran this cell's images; BehindAtLeast: it never ran them in the
	// history read, so Behind is a lower bound.
	Behind        int  `json:"behind,omitempty"`
	BehindAtLeast bool `json:"behindAtLeast,omitempty"`
}

// Change is one commit as status reports it.
type Change struct {
	Commit string `json:"commit"`
	// Time is when the commit landed (its committer time).
	Time    time.Time `json:"time"`
	Author  string    `json:"author"` // Name <email>
	Action  string    `json:"action"` // deploy, promote, rollback or manual
	Subject string    `json:"subject"`
	// Signature is the commit's, checked against Env.Verifier, when
	// status was asked to verify.
	Signature *SignatureStatus `json:"signature,omitempty"`
}

// Hold is a rollback holding a cell.
type Hold struct {
	Change
	Scope string `json:"scope"` // the scope it rolled back
}

// Event is one change of an app in one column.
type Event struct {
	Change
	Env string `json:"env"` // the column's label
	// Images are what the commit's trailers say it wrote; none for a
	// commit by hand.
	Images []Image `json:"images"`
}

// Status reports what runs where, reading each (repository, branch) once,
// Depth commits deep, without a single file: commit messages (the audit
// trailers say which images ferry wrote) and trees (to see what changed).
func Status(ctx context.Context, e Env, req StatusRequest) (*StatusReport, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	depth := req.Depth
	if depth == 0 {
		depth = statusDepth
	}
	cols, err := statusColumns(ctx, e, req.Config, depth)
	if err != nil {
		return nil, err
	}
	if req.Verify {
		for _, c := range cols {
			c.verify = func(c *object.Commit) (*SignatureStatus, error) { return signatureOf(e, c) }
		}
	}
	rep := &StatusReport{GeneratedAt: time.Now().UTC(), Environments: []StatusEnv{}, Apps: []AppStatus{}}
	for _, c := range cols {
		rep.Environments = append(rep.Environments, c.info)
	}
	apps := slices.Clone(req.Apps)
	if len(apps) == 0 {
		if apps, err = foundApps(cols, req.Config.App); err != nil {
			return nil, err
		}
	}
	sort.Strings(apps)
	for _, app := range slices.Compact(apps) {
		row, err := appStatus(cols, app)
		if err != nil {
			return nil, err
		}
		rep.Apps = append(rep.Apps, row)
	}
	return rep, nil
}

// column is one environment in one repository, over its branch's history.
type column struct {
	env  *config.Environment
	info StatusEnv
	prev int // the column to compare with for Behind; -1 for none
	br   *branch
	// changed[i] is, for the i-th commit of br, the names that changed in
	// the directory holding the apps (Template.Parent), computed once: an
	// app not among them did not change there. nil: not computed yet, or
	// not to be trusted (the directory is missing on one side).
	changed []map[string]bool
	known   []bool
	// verify, when set, checks a commit's signature.
	verify func(*object.Commit) (*SignatureStatus, error)
}

// appChanged reports whether app's directory may have changed in the i-th
// commit: false only when the apps' parent directory says it did not.
func (c *column) appChanged(i int, app string) bool {
	h := c.br.h
	if c.changed == nil {
		c.changed, c.known = make([]map[string]bool, len(c.br.commits)), make([]bool, len(c.br.commits))
	}
	if !c.known[i] && !c.env.Path.HasApp() {
		c.known[i] = true // the one app's directory: no parent to list
	}
	if !c.known[i] {
		c.known[i] = true
		parent, _ := c.env.Path.Parent(c.env.Name)
		w := &c.br.commits[i]
		a, okA := h.TreeAt(w.c.TreeHash, parent)
		b, okB := h.TreeAt(w.parentTree, parent)
		if okA && okB {
			if m, err := h.ChangedNames(a, b); err == nil {
				c.changed[i] = m
			}
		}
	}
	m := c.changed[i]
	return m == nil || m[app]
}

// branch is one (repository, branch) read once, however many columns
// (directories of environments on one branch) it serves.
type branch struct {
	h *envrepo.History // nil when the branch does not exist
	// commits are the first-parent chain from the tip, newest first, each
	// with its parent fetched; truncated says the chain goes on.
	commits   []walked
	truncated bool
	// rollbacks are the scopes of the rollbacks read: only a cell that
	// overlaps one can be held, and only then is the hold rule asked.
	rollbacks []string
}

type walked struct {
	c          *object.Commit
	rec        audit.Record
	parentTree plumbing.Hash // zero for the branch's first commit
}

// statusColumns locates every environment's columns and reads their
// branches, all at once, each (repository, branch) once.
func statusColumns(ctx context.Context, e Env, cfg *config.Config, depth int) ([]*column, error) {
	type key struct{ url, branch string }
	branches := map[key]*branch{}
	remotes := map[key]envrepo.Remote{}
	var cols []*column
	firstOf := make([]int, len(cfg.Environments))
	for i := range cfg.Environments {
		env := &cfg.Environments[i]
		firstOf[i] = len(cols)
		repos := env.Repos
		if len(repos) == 0 {
			repos = []string{""}
		}
		for _, url := range repos {
			r := e.remoteFor(url)
			k := key{r.URL, env.Branch}
			if branches[k] == nil {
				branches[k] = &branch{}
				remotes[k] = r
			}
			label := env.Name
			if len(repos) > 1 {
				label = fmt.Sprintf("%s (%s)", env.Name, repoBase(r.URL))
			}
			prev := -1
			if i > 0 {
				prev = firstOf[i-1]
			}
			cols = append(cols, &column{
				env:  env,
				prev: prev,
				br:   branches[k],
				info: StatusEnv{Name: env.Name, Label: label, Repo: envrepo.Redact(r.URL), Branch: env.Branch, Path: string(env.Path)},
			})

		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(branches))
	for k, b := range branches {
		wg.Go(func() {
			if err := b.read(ctx, remotes[k], k.branch, depth); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for _, c := range cols {
		if c.br.h == nil {
			c.info.Missing = true
			continue
		}
		c.info.Tip = c.br.h.Tip.String()
		c.info.Complete = !c.br.truncated
	}
	return cols, nil
}

// read fetches the branch without blobs (messages and trees) and walks its
// first-parent chain once.
func (b *branch) read(ctx context.Context, r envrepo.Remote, name string, depth int) error {
	h, err := envrepo.FetchHistory(ctx, r, name, depth)
	if errors.Is(err, envrepo.ErrBranchNotFound) {
		return nil // an environment not created yet: nothing runs there
	}
	if err != nil {
		return err
	}
	b.h = h
	err = h.FirstParent(func(c *object.Commit, parentTree plumbing.Hash) (bool, error) {
		b.commits = append(b.commits, walked{c: c, rec: audit.Parse(c.Message), parentTree: parentTree})
		return true, nil
	})
	if errors.Is(err, envrepo.ErrTruncated) {
		b.truncated, err = true, nil
	}
	if err == nil {
		// The walk the hold rule makes, which reaches the commit at the
		// edge of the fetch too.
		err = h.Walk(h.Tip, func(c *object.Commit) bool {
			if rec := audit.Parse(c.Message); rec.Action == audit.ActionRollback && rec.Path != "" {
				b.rollbacks = append(b.rollbacks, rec.Path)
			}
			return true
		})
		if errors.Is(err, envrepo.ErrTruncated) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("reading the history of %s in %s: %w", name, r, err)
	}
	return nil
}

// mayHold reports whether a rollback read overlaps dir.
func (b *branch) mayHold(dir string) bool {
	return slices.ContainsFunc(b.rollbacks, func(s string) bool { return overlaps(s, dir) })
}

// repoBase names a repository by its last path element, without .git:
// "prod-eu" for https://git.example.com/acme/prod-eu.git or
// git@host:acme/prod-eu.
func repoBase(url string) string {
	s := strings.TrimRight(url, "/")
	s = s[strings.LastIndexAny(s, "/:")+1:]
	return strings.TrimSuffix(s, ".git")
}

// foundApps lists the apps whose directory exists in any column's tip,
// reading trees only. one is the repo's one app (config.Config.App), the
// only app to look for, when it is not "".
func foundApps(cols []*column, one string) ([]string, error) {
	seen := map[string]bool{}
	for _, c := range cols {
		h := c.br.h
		if h == nil {
			continue
		}
		tip, err := h.Commit(h.Tip)
		if err != nil {
			return nil, err
		}
		if one != "" {
			if _, ok := h.TreeAt(tip.TreeHash, c.env.Dir(one)); ok {
				seen[one] = true
			}
			continue
		}
		dir, _ := c.env.Path.Parent(c.env.Name)
		snap, err := h.At(h.Tip)
		if err != nil {
			return nil, err
		}
		entries, err := fs.ReadDir(snap.FS(), dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s on %s: %w", dir, c.info.Branch, err)
		}
		for _, en := range entries {
			app := en.Name()
			if !en.IsDir() || config.ValidApp(app) != nil {
				continue
			}
			if _, ok := h.TreeAt(tip.TreeHash, c.env.Dir(app)); ok {
				seen[app] = true
			}
		}
	}
	return sortedKeys(seen), nil
}

// scopeChange is a commit that changed one cell's directory.
type scopeChange struct {
	*walked
	ferry bool // a ferry commit whose Ferry-Path covers the directory
	// images: ferry's images in the directory after the commit, by
	// repository, as far as the trailers of ferry commits tell.
	images map[string]Image
}

// appStatus computes one row.
func appStatus(cols []*column, app string) (AppStatus, error) {
	row := AppStatus{App: app, Cells: make([]Cell, len(cols)), Timeline: []Event{}}
	changes := make([][]scopeChange, len(cols))
	var colOf []int // of each event
	for i, c := range cols {
		cell, ch, err := c.cell(app)
		if err != nil {
			return row, err
		}
		if c.verify != nil && cell.LastChange != nil && len(ch) > 0 {
			if cell.LastChange.Signature, err = c.verify(ch[0].c); err != nil {
				return row, err
			}
		}
		row.Cells[i], changes[i] = cell, ch
		for _, sc := range ch[:min(len(ch), timelineMax)] {
			ev := Event{Change: change(sc.walked, sc.ferry), Env: c.info.Label, Images: []Image{}}
			if sc.ferry {
				ev.Images = trailerImages(sc.rec.Images)
			}
			row.Timeline = append(row.Timeline, ev)
			colOf = append(colOf, i)
		}
	}
	for i, c := range cols {
		if c.prev >= 0 {
			behind(&row.Cells[i], &row.Cells[c.prev], changes[c.prev])
		}
		if row.Cells[i].State == "" {
			row.Cells[i].State = row.Cells[i].state()
		}
	}
	// Newest first. Commits of one second in several columns are most
	// likely a promotion, which goes forward: the later column's is newer.
	// Within a column the first-parent order stands.
	idx := make([]int, len(row.Timeline))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ta, tb := row.Timeline[idx[a]].Time, row.Timeline[idx[b]].Time
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
		return colOf[idx[a]] > colOf[idx[b]]
	})
	sorted := make([]Event, len(idx))
	for i, j := range idx {
		sorted[i] = row.Timeline[j]
	}
	row.Timeline = sorted
	return row, nil
}

// cell computes app's cell in c but Behind, and returns the commits that
// changed its directory, newest first.
func (c *column) cell(app string) (Cell, []scopeChange, error) {
	dir := c.env.Dir(app)
	cell := Cell{Env: c.info.Label, Path: dir, State: StateAbsent, Images: []Image{}}
	h := c.br.h
	if h == nil {
		return cell, nil, nil
	}
	tip, err := h.Commit(h.Tip)
	if err != nil {
		return cell, nil, err
	}
	now, ok := h.TreeAt(tip.TreeHash, dir)
	if !ok {
		return cell, nil, nil
	}
	cell.State = "" // present: appStatus sums it up once Behind is known
	var changes []scopeChange
	for i := range c.br.commits {
		w := &c.br.commits[i]
		if !c.appChanged(i, app) || !changedScope(h, w.c.TreeHash, w.parentTree, dir) {
			continue
		}
		ferry := w.rec.Action != audit.ActionManual && w.rec.Path != "" && within(dir, w.rec.Path)
		changes = append(changes, scopeChange{walked: w, ferry: ferry})
	}
	// Oldest first, each ferry commit's trailers over what came before.
	state := map[string]Image{}
	for i := len(changes) - 1; i >= 0; i-- {
		if !changes[i].ferry {
			continue
		}
		state = maps.Clone(state)
		for _, img := range changes[i].rec.Images {
			im := imageOfRef(img)
			state[canonicalRepo(im.Name)] = im
		}
		changes[i].images = state
	}
	if len(changes) > 0 {
		ch := change(changes[0].walked, changes[0].ferry)
		cell.LastChange = &ch
	}
	if i := slices.IndexFunc(changes, func(sc scopeChange) bool { return sc.ferry }); i >= 0 {
		f := changes[i]
		ch := change(f.walked, true)
		cell.Ferry = &ch
		cell.Sources = f.rec.Sources
		cell.PromotedFrom = f.rec.PromotedFrom
		for _, repo := range sortedKeys(f.images) {
			cell.Images = append(cell.Images, f.images[repo])
		}
		then, _ := h.TreeAt(f.c.TreeHash, dir)
		cell.Drifted = then != now
	} else if !c.br.truncated {
		cell.Drifted, cell.Unmanaged = true, true
	} else {
		// Ferry may have written it before the commits read; a change by
		// hand among them undid that all the same.
		cell.Drifted = len(changes) > 0
	}
	if !c.br.mayHold(dir) {
		return cell, changes, nil
	}
	// The holds found are holds even when the history read ends before
	// the rule settles: what lifts a hold comes after it.
	holds, err := rollbackHolds(h, h.Tip, dir)
	if err != nil && !errors.Is(err, envrepo.ErrTruncated) {
		return cell, nil, fmt.Errorf("checking %s on %s for a rollback: %w", dir, c.info.Branch, err)
	}
	if len(holds) > 0 {
		w := walked{c: holds[0].commit, rec: audit.Parse(holds[0].commit.Message)}
		cell.Held = &Hold{Change: change(&w, true), Scope: holds[0].scope}
	}
	return cell, changes, nil
}

// behind compares cell with prev, the same app's cell in the environment
// before, whose changes are prevChanges: how many image changes prev made
// since it ran what cell runs.
func behind(cell, prev *Cell, prevChanges []scopeChange) {
	if cell.Ferry == nil || prev.Ferry == nil || len(cell.Images) == 0 {
		return // absent, or nothing ferry wrote to compare
	}
	want := imageSet(cell.Images)
	if imageSet(prev.Images) == want {
		return
	}
	n := 0
	for _, sc := range prevChanges {
		if !sc.ferry || len(sc.rec.Images) == 0 {
			continue
		}
		if imageSet(sortedImages(sc.images)) == want {
			cell.Behind = n
			return
		}
		n++
	}
	cell.Behind, cell.BehindAtLeast = n, true
}

// state sums up a present cell.
func (c *Cell) state() string {
	switch {
	case c.Held != nil:
		return StateHeld
	case c.Unmanaged:
		return StateUnmanaged
	case c.Drifted:
		return StateDrifted
	case c.Ferry == nil:
		return StateUnknown
	case c.Behind > 0 || c.BehindAtLeast:
		return StateBehind
	}
	return StateCurrent
}

func change(w *walked, ferry bool) Change {
	c := w.c
	action := audit.ActionManual
	if ferry {
		action = w.rec.Action
	}
	return Change{
		Commit:  c.Hash.String(),
		Time:    c.Committer.When.UTC(),
		Author:  c.Author.Name + " <" + c.Author.Email + ">",
		Action:  action,
		Subject: firstLine(c.Message),
	}
}

// trailerImages are the images of Ferry-Image trailers, sorted.
func trailerImages(refs []string) []Image {
	out := []Image{}
	for _, r := range refs {
		out = append(out, imageOfRef(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func imageOfRef(s string) Image {
	r := ref.Split(s)
	return Image{Name: r.Repo, Tag: r.Tag, Digest: r.Digest, Ref: s}
}

func canonicalRepo(repo string) string {
	if canon, err := ref.ParseRepo(repo); err == nil {
		return canon
	}
	return repo
}

func sortedImages(m map[string]Image) []Image {
	out := make([]Image, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// imageSet is images as a set of repo@digest, tags aside: one string, to
// compare.
func imageSet(images []Image) string {
	keys := make([]string, 0, len(images))
	for _, im := range images {
		keys = append(keys, canonicalRepo(im.Name)+"@"+im.Digest)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}
