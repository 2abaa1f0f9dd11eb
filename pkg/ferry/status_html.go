package ferry

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ferrycd/ferry/pkg/ref"
)

// statusPage is the page's template: one file, its CSS inline, nothing
// loaded from anywhere, so it can be uploaded as a CI artifact or mailed
// and still show the same.
//
//go:embed status.html.tmpl
var statusPage string

var statusTmpl = template.Must(template.New("status").Parse(statusPage))

// WriteStatusHTML writes the report as one self-contained HTML page: a
// matrix of apps by environments, each cell with its images, the action and
// age of what put them there and a badge for each marker, then each app's
// promotion timeline, one lane per environment. Every cell carries
// data-app, data-env and data-state attributes.
func WriteStatusHTML(w io.Writer, r *StatusReport) error {
	return statusTmpl.Execute(w, pageOf(r))
}

// The page's view of the report: every string shown is ready, escaped for
// control characters (html/template escapes for HTML).
type (
	page struct {
		Generated, GeneratedISO string
		Envs                    []pageEnv
		Rows                    []pageRow
		Legend                  []pageBadge
		Counts                  []pageBadge // how many cells are in each state
	}
	pageEnv struct {
		Label, Branch, Repo, Path, Tip string
		Missing, Partial               bool
	}
	pageRow struct {
		App      string
		Cells    []pageCell
		Timeline pageTimeline
	}
	pageCell struct {
		App, Env, State       string
		Images                []pageImage
		Action, Age, When     string
		Commit, Author, Title string
		Badges                []pageBadge
		Source, BuildID       string
		BuildURL              template.URL
	}
	pageImage struct{ Name, Tag, Digest, Ref string }
	pageBadge struct{ Class, Text, Title string }
	// pageTimeline is a grid: a lane per column, a slot per event in time
	// order, oldest first; each event sits in its lane's slot.
	pageTimeline struct {
		Slots int
		Lanes []pageLane
	}
	pageLane struct {
		Label  string
		Events []*pageEvent // one per slot, nil where the lane has none
	}
	pageEvent struct {
		Action, Age, When, Commit, Author, Subject string
		Images                                     []string
	}
)

func pageOf(r *StatusReport) page {
	now := r.GeneratedAt
	p := page{Generated: now.Format("2006-01-02 15:04 MST"), GeneratedISO: now.Format(time.RFC3339)}
	for _, e := range r.Environments {
		p.Envs = append(p.Envs, pageEnv{Label: cell(e.Label), Branch: cell(e.Branch), Repo: cell(e.Repo), Path: cell(e.Path),
			Tip: cell(abbrev8(e.Tip)), Missing: e.Missing, Partial: !e.Complete && !e.Missing})
	}
	counts := map[string]int{}
	for _, a := range r.Apps {
		row := pageRow{App: cell(a.App)}
		for _, c := range a.Cells {
			counts[c.State]++
			row.Cells = append(row.Cells, pageCellOf(a.App, c, now))
		}
		row.Timeline = timelineOf(r, a, now)
		p.Rows = append(p.Rows, row)
	}
	for _, l := range statusLegend {
		class, _, _ := strings.Cut(l.marker, " ")
		p.Legend = append(p.Legend, pageBadge{Class: class, Text: l.marker, Title: l.means})
	}
	for _, s := range []string{StateCurrent, StateBehind, StateDrifted, StateHeld, StateUnmanaged, StateUnknown, StateAbsent} {
		if counts[s] > 0 {
			p.Counts = append(p.Counts, pageBadge{Class: s, Text: fmt.Sprintf("%d %s", counts[s], s)})
		}
	}
	return p
}

func pageCellOf(app string, c Cell, now time.Time) pageCell {
	pc := pageCell{App: cell(app), Env: cell(c.Env), State: c.State}
	for _, im := range c.Images {
		pi := pageImage{Name: cell(ref.Ref{Repo: im.Name}.Base()), Tag: cell(im.Tag), Ref: cell(im.Ref)}
		if _, hex, ok := strings.Cut(im.Digest, ":"); ok {
			pi.Digest = cell(hex[:min(len(hex), statusDigestLen)])
		}
		pc.Images = append(pc.Images, pi)
	}
	// What put the images there, or else the last change.
	ch := c.Ferry
	if ch == nil {
		ch = c.LastChange
	}
	if ch != nil {
		pc.Action, pc.Age, pc.When = cell(ch.Action), age(now, ch.Time), ch.Time.Format("2006-01-02 15:04 MST")
		pc.Commit, pc.Author = cell(abbrev8(ch.Commit)), cell(authorName(ch.Author))
		pc.Title = cell(ch.Subject)
	}
	if len(c.Sources) > 0 {
		s := c.Sources[0]
		pc.Source, pc.BuildID = cell(ref.ShortSHA(s.SourceCommit)), cell(s.BuildID)
		// html/template refuses a javascript: or other unsafe URL by
		// itself; only web links are offered at all.
		if u := cell(s.BuildURL); strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			pc.BuildURL = template.URL(u)
		}
	}
	if c.Held != nil {
		pc.Badges = append(pc.Badges, pageBadge{Class: StateHeld, Text: StateHeld,
			Title: cell(fmt.Sprintf("held by rollback %s of %s (%s)", abbrev8(c.Held.Commit), c.Held.Scope, c.Held.Subject))})
	}
	switch {
	case c.Unmanaged:
		pc.Badges = append(pc.Badges, pageBadge{Class: StateUnmanaged, Text: StateUnmanaged, Title: "no ferry commit ever wrote it"})
	case c.Drifted:
		title := "changed by hand since ferry wrote it"
		if c.LastChange != nil {
			title += cell(fmt.Sprintf(": %s by %s, %s", abbrev8(c.LastChange.Commit), authorName(c.LastChange.Author), c.LastChange.Subject))
		}
		pc.Badges = append(pc.Badges, pageBadge{Class: StateDrifted, Text: StateDrifted, Title: title})
	case c.Ferry == nil && c.State != StateAbsent:
		pc.Badges = append(pc.Badges, pageBadge{Class: StateUnknown, Text: StateUnknown, Title: "unchanged in all the commits read"})
	}
	if b := c.behindText(); b != "" {
		pc.Badges = append(pc.Badges, pageBadge{Class: StateBehind, Text: StateBehind + " " + b,
			Title: "the environment before it changed its images " + b + " time(s) since it ran these"})
	}
	return pc
}

func timelineOf(r *StatusReport, a AppStatus, now time.Time) pageTimeline {
	// Oldest first: the report's order reversed, ties and all.
	events := slices.Clone(a.Timeline)
	slices.Reverse(events)
	tl := pageTimeline{Slots: len(events)}
	lane := map[string]int{}
	for i, e := range r.Environments {
		lane[e.Label] = i
		tl.Lanes = append(tl.Lanes, pageLane{Label: cell(e.Label), Events: make([]*pageEvent, len(events))})
	}
	for i, ev := range events {
		l, ok := lane[ev.Env]
		if !ok {
			continue
		}
		tl.Lanes[l].Events[i] = &pageEvent{
			Action: cell(ev.Action), Age: age(now, ev.Time),
			When: ev.Time.Format("2006-01-02 15:04 MST"), Commit: cell(abbrev8(ev.Commit)),
			Author: cell(authorName(ev.Author)), Subject: cell(ev.Subject),
		}
		// One line per image, each named when there are several.
		for _, im := range ev.Images {
			tl.Lanes[l].Events[i].Images = append(tl.Lanes[l].Events[i].Images, cell(imageLabel(im, len(ev.Images) > 1)))
		}
	}
	return tl
}

// age says how long before now t was, in its largest unit: "3d", "5h".
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return ""
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
	return t.Format("2006-01-02")
}

func authorName(a string) string {
	name, _, _ := strings.Cut(a, " <")
	return name
}
