package ferry_test

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files and the reference screenshot in testdata/status")

// sampleNow is when sampleStatus was generated.
var sampleNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// sampleStatus is a realistic report: three environments, six apps, every
// state a cell can be in.
func sampleStatus() *ferry.StatusReport {
	const reg = "us-docker.pkg.dev/acme/apps/"
	img := func(name, tag string) ferry.Image {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(name+tag)))
		return ferry.Image{Name: reg + name, Tag: tag, Digest: d, Ref: reg + name + ":" + tag + "@" + d}
	}
	n := 0
	ch := func(action string, ago time.Duration, author, subject string) *ferry.Change {
		n++
		return &ferry.Change{
			Commit: fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprint(n))))[:40], Time: sampleNow.Add(-ago),
			Author: author, Action: action, Subject: subject,
		}
	}
	const bot = "ferry <ferry@acme.example>"
	h, d := time.Hour, 24*time.Hour
	type cellSpec struct {
		env    string
		images []ferry.Image
		ferry  *ferry.Change
		last   *ferry.Change // nil: ferry's
		mark   func(*ferry.Cell)
	}
	envs := []string{"candidate", "staging", "production"}
	rep := &ferry.StatusReport{GeneratedAt: sampleNow}
	for _, e := range envs {
		rep.Environments = append(rep.Environments, ferry.StatusEnv{
			Name: e, Label: e, Repo: "https://github.com/acme/env", Branch: e, Path: "apps/{app}",
			Tip: fmt.Sprintf("%x", sha256.Sum256([]byte(e)))[:40], Complete: true,
		})
	}
	app := func(name string, cells ...cellSpec) {
		a := ferry.AppStatus{App: name}
		for i, e := range envs {
			c := ferry.Cell{Env: e, Path: "apps/" + name, State: ferry.StateAbsent, Images: []ferry.Image{}}
			for _, s := range cells {
				if s.env != e {
					continue
				}
				c.Images, c.Ferry, c.LastChange = s.images, s.ferry, s.last
				if c.LastChange == nil {
					c.LastChange = s.ferry
				}
				if s.ferry != nil {
					c.Sources = []audit.Source{{SourceRepo: "https://github.com/acme/" + name, SourceCommit: fmt.Sprintf("%x", sha256.Sum256([]byte(name)))[:40],
						BuildID: "b-" + name[:3] + "-" + fmt.Sprint(100+i), BuildURL: "https://ci.acme.example/builds/" + name}}
				}
				c.State = ferry.StateCurrent
				if s.mark != nil {
					s.mark(&c)
				}
			}
			a.Cells = append(a.Cells, c)
			if c.State == ferry.StateAbsent {
				continue
			}
			// A few changes per column, oldest last.
			if c.Ferry != nil {
				a.Timeline = append(a.Timeline, ferry.Event{Change: *c.Ferry, Env: e, Images: c.Images})
			}
			if c.LastChange != c.Ferry {
				a.Timeline = append(a.Timeline, ferry.Event{Change: *c.LastChange, Env: e, Images: []ferry.Image{}})
			}
		}
		for i := range a.Timeline {
			// Older versions, for a timeline with some length.
			if a.Timeline[i].Action == "deploy" {
				older := a.Timeline[i]
				older.Time = older.Time.Add(-3 * d)
				older.Commit = strings.Repeat("e", 40)
				a.Timeline = append(a.Timeline, older)
			}
		}
		sortTimeline(a.Timeline)
		rep.Apps = append(rep.Apps, a)
	}
	co1, co0 := img("checkout", "v2.4.1"), img("checkout", "v2.3.9")
	app("checkout",
		cellSpec{env: "candidate", images: []ferry.Image{co1}, ferry: ch("deploy", 3*h, bot, "deploy checkout to candidate")},
		cellSpec{env: "staging", images: []ferry.Image{co1}, ferry: ch("promote", 2*h, bot, "promote checkout to staging")},
		cellSpec{env: "production", images: []ferry.Image{co0}, ferry: ch("promote", 4*d, bot, "promote checkout to production"),
			mark: func(c *ferry.Cell) { c.Behind, c.State = 2, ferry.StateBehind }},
	)
	pa1, pa0 := img("payments", "v1.8.0"), img("payments", "v1.7.2")
	rb := ch("rollback", 40*time.Minute, "Dana Oncall <dana@acme.example>", "roll back payments on production to 3f2a1c0d9e8b")
	app("payments",
		cellSpec{env: "candidate", images: []ferry.Image{pa1}, ferry: ch("deploy", 26*h, bot, "deploy payments to candidate")},
		cellSpec{env: "staging", images: []ferry.Image{pa1}, ferry: ch("promote", 20*h, bot, "promote payments to staging")},
		cellSpec{env: "production", images: []ferry.Image{pa0}, ferry: rb, mark: func(c *ferry.Cell) {
			c.Held = &ferry.Hold{Change: *rb, Scope: "apps/payments"}
			c.Behind, c.State = 1, ferry.StateHeld
		}},
	)
	se1, se0 := img("search", "v3.1.0"), img("search", "v3.0.4")
	app("search",
		cellSpec{env: "candidate", images: []ferry.Image{se1}, ferry: ch("deploy", 5*h, bot, "deploy search to candidate"),
			last: ch("manual", 90*time.Minute, "Sam Hand <sam@acme.example>", "search: bump replicas for the sale"),
			mark: func(c *ferry.Cell) { c.Drifted, c.State = true, ferry.StateDrifted }},
		cellSpec{env: "staging", images: []ferry.Image{se0}, ferry: ch("promote", 3*d, bot, "promote search to staging"),
			mark: func(c *ferry.Cell) { c.Behind, c.State = 1, ferry.StateBehind }},
	)
	gw, envoy := img("gateway", "v5.0.2"), img("envoy", "v1.30.1")
	app("gateway",
		cellSpec{env: "candidate", images: []ferry.Image{envoy, gw}, ferry: ch("deploy", 8*d, bot, "deploy gateway to candidate")},
		cellSpec{env: "staging", images: []ferry.Image{envoy, gw}, ferry: ch("promote", 7*d, bot, "promote gateway to staging")},
		cellSpec{env: "production", images: []ferry.Image{envoy, gw}, ferry: ch("promote", 6*d, bot, "promote gateway to production")},
	)
	app("notifications",
		cellSpec{env: "candidate", images: []ferry.Image{img("notifications", "v0.9.0")}, ferry: ch("deploy", 15*time.Minute, bot, "deploy notifications to candidate")},
	)
	manual := func() *ferry.Change {
		return ch("manual", 90*d, "Old Timer <old@acme.example>", "legacy-batch: nightly job")
	}
	unmanaged := func(c *ferry.Cell) { c.Drifted, c.Unmanaged, c.State = true, true, ferry.StateUnmanaged }
	app("legacy-batch",
		cellSpec{env: "candidate", last: manual(), mark: unmanaged},
		cellSpec{env: "staging", last: manual(), mark: unmanaged},
		cellSpec{env: "production", last: manual(), mark: unmanaged},
	)
	return rep
}

func sortTimeline(evs []ferry.Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].Time.After(evs[j-1].Time); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

// golden compares got with testdata/status/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", "status", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", file, diff)
	}
}

func TestWriteStatus(t *testing.T) {
	var plain, color bytes.Buffer
	ferry.WriteStatus(&plain, sampleStatus(), false)
	golden(t, "status.txt", plain.Bytes())
	if bytes.Contains(plain.Bytes(), []byte("\x1b")) {
		t.Error("colour without a terminal")
	}
	ferry.WriteStatus(&color, sampleStatus(), true)
	// Coloured, the same text once the colours are taken out.
	sgr := regexp.MustCompile("\x1b\\[[0-9;]*m")
	if !sgr.Match(color.Bytes()) {
		t.Error("no colour on a terminal")
	}
	if diff := cmp.Diff(plain.String(), sgr.ReplaceAllString(color.String(), "")); diff != "" {
		t.Errorf("colour changed the text (-plain +coloured, uncoloured):\n%s", diff)
	}
	var md bytes.Buffer
	ferry.WriteStatusMarkdown(&md, sampleStatus())
	golden(t, "status.md", md.Bytes())
}

// What came from the repositories cannot act on the terminal, break the
// markdown table, or run in the page.
func TestWriteStatusEscapes(t *testing.T) {
	const evil = "x\x1b]0;pwned\x07|`<img src=x onerror=alert(1)>"
	rep := sampleStatus()
	a := &rep.Apps[1] // payments: held, with a timeline
	a.App = evil
	for i := range a.Cells {
		c := &a.Cells[i]
		c.Images = append(c.Images, ferry.Image{Name: "r.example/" + evil, Tag: evil, Digest: "sha256:" + evil})
		if c.Ferry != nil {
			c.Ferry.Author, c.Ferry.Subject = evil+" <e@example.com>", evil
		}
		if c.Held != nil {
			c.Held.Subject = evil
		}
	}
	for i := range a.Timeline {
		a.Timeline[i].Author, a.Timeline[i].Subject = evil, evil
	}
	rep.Environments[2].Label = "prod" + evil
	for i := range rep.Apps {
		rep.Apps[i].Cells[2].Env = rep.Environments[2].Label
	}

	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		ferry.WriteStatus(&b, rep, color)
		out := b.String()
		if color {
			out = regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
		}
		if hasControl(out, "\n") || !strings.Contains(out, `x\u001b]0;pwned\u0007`) {
			t.Errorf("text (color %v) has raw controls or lacks the escaped name:\n%q", color, out)
		}
	}

	var md bytes.Buffer
	ferry.WriteStatusMarkdown(&md, rep)
	for _, line := range strings.Split(strings.TrimSpace(md.String()), "\n") {
		if hasControl(line, "") {
			t.Errorf("markdown line with raw controls: %q", line)
		}
		if !strings.HasPrefix(line, "|") {
			continue
		}
		// Every row has as many cells as the header: no '|' got through.
		if got := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(line, -1)); got != 1+len(rep.Environments)+1 {
			t.Errorf("markdown row with %d unescaped '|', want %d: %s", got, 2+len(rep.Environments), line)
		}
		if regexp.MustCompile("(^|[^\\\\])[`<]").MatchString(strings.NewReplacer("<sub>", "", "</sub>", "").Replace(line)) {
			t.Errorf("markdown row with an unescaped '`' or '<': %s", line)
		}
	}

	var page bytes.Buffer
	if err := ferry.WriteStatusHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<img") || hasControl(page.String(), "\n") {
		t.Errorf("the page lets markup or control characters through")
	}
	if !strings.Contains(page.String(), `data-app="x\u001b]0;pwned\u0007|`+"`"+`&lt;img src=x onerror=alert(1)&gt;"`) {
		t.Errorf("the page lacks the escaped app in data-app")
	}
}

// The page is one file: nothing it shows comes from elsewhere.
func TestWriteStatusHTMLSelfContained(t *testing.T) {
	rep := sampleStatus()
	var b bytes.Buffer
	if err := ferry.WriteStatusHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	// The only URLs are the ones the data holds: repositories, builds.
	supplied := map[string]bool{}
	for _, e := range rep.Environments {
		supplied[e.Repo] = true
	}
	for _, a := range rep.Apps {
		for _, c := range a.Cells {
			for _, s := range c.Sources {
				supplied[s.BuildURL] = true
			}
		}
	}
	for _, u := range regexp.MustCompile(`(?i)(https?:)?//[^"'<>\s)]*`).FindAllString(page, -1) {
		if !supplied[u] {
			t.Errorf("the page names %q, which no data supplied", u)
		}
	}
	for _, bad := range []string{"<script", "<link", "@import", "url(", "<iframe", "<object", "<embed", "<img"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("the page has %s", bad)
		}
	}
	// One cell per app and column, each saying its state.
	cells := regexp.MustCompile(`data-app="([^"]*)" data-env="([^"]*)" data-state="([^"]*)"`).FindAllStringSubmatch(page, -1)
	var got, want []string
	for _, m := range cells {
		got = append(got, m[1]+"/"+m[2]+"="+m[3])
	}
	for _, a := range rep.Apps {
		for _, c := range a.Cells {
			want = append(want, a.App+"/"+c.Env+"="+c.State)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
}
