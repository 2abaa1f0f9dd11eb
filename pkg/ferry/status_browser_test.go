package ferry_test

import (
	"bytes"
	"context"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testenv"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/google/go-cmp/cmp"
)

// TestStatusHTMLInBrowser renders the page in a real browser, headless
// Chromium: the DOM it builds holds every cell with its state, and the
// screenshot is a page, not a blank. The reference screenshot in
// testdata/status (rewritten with -update) is compared by size only: fonts
// differ from machine to machine; look at it to see the page.
func TestStatusHTMLInBrowser(t *testing.T) {
	chromium := lookChromium(t)
	rep := sampleStatus()
	dir := t.TempDir()
	page := filepath.Join(dir, "status.html")
	var b bytes.Buffer
	if err := ferry.WriteStatusHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.ToSlash(page)

	dom := runChromium(t, chromium, "--dump-dom", url)
	var got, want []string
	for _, m := range regexp.MustCompile(`data-app="([^"]*)" data-env="([^"]*)" data-state="([^"]*)"`).FindAllSubmatch(dom, -1) {
		got = append(got, html.UnescapeString(string(m[1]))+"/"+html.UnescapeString(string(m[2]))+"="+string(m[3]))
	}
	events := 0
	for _, a := range rep.Apps {
		for _, c := range a.Cells {
			want = append(want, a.App+"/"+c.Env+"="+c.State)
		}
		events += len(a.Timeline)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cells in the browser's DOM (-want +got):\n%s", diff)
	}
	// The sample has one cell in each state but unknown.
	for _, state := range []string{"current", "behind", "drifted", "held", "unmanaged", "absent"} {
		if !strings.Contains(strings.Join(got, " "), "="+state) {
			t.Errorf("no %s cell in the DOM", state)
		}
	}
	if n := bytes.Count(dom, []byte(`<div class="ev `)); n != events {
		t.Errorf("%d timeline events in the DOM, want %d", n, events)
	}

	shot := filepath.Join(dir, "status.png")
	runChromium(t, chromium, "--screenshot="+shot, "--window-size=1280,900", url)
	img := decodePNG(t, shot)
	checkScreenshot(t, "screenshot", img)
	ref := filepath.Join("testdata", "status", "reference.png")
	if *update {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ref, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkScreenshot(t, "reference screenshot", decodePNG(t, ref))
}

// lookChromium finds Debian's chromium, or Ubuntu's and others'
// chromium-browser; without either the test skips, or fails in CI.
func lookChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return testenv.LookPath(t, "chromium", "Debian: apt-get install chromium")
}

// runChromium runs headless Chromium with args and a profile of its own,
// for at most a minute, and returns what it printed.
func runChromium(t *testing.T, chromium string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.CommandContext(ctx, chromium, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", chromium, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func decodePNG(t *testing.T, file string) image.Image {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to make the reference)", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return img
}

// checkScreenshot: the window's size, and a page: text, badges and
// borders make hundreds of colours, a blank or an error page a handful.
func checkScreenshot(t *testing.T, what string, img image.Image) {
	t.Helper()
	if got, want := img.Bounds().Size(), image.Pt(1280, 900); got != want {
		t.Errorf("%s is %v, want the window's %v", what, got, want)
	}
	colours := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colours) < 100 {
		t.Errorf("%s has %d distinct colours: blank?", what, len(colours))
	}
}
