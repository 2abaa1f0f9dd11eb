package ferry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/ferry"
)

// hasControl reports a control character a terminal acts on, other than
// the newline and tab a table or a patch is made of.
func hasControl(s string, keep string) bool {
	for _, r := range s {
		if (r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f) && !strings.ContainsRune(keep, r) {
			return true
		}
	}
	return false
}

// WriteHistory and WriteDiff are safe on their own, for programs that use
// them without ferry's CLI: what came from the repository is printed with
// its control characters escaped.
func TestWriteTextEscapes(t *testing.T) {
	evil := "x\x1b]0;pwned\x07\x1b[2J\u009b1m\x7f\ty\nz\r"
	const shown = `x\u001b]0;pwned\u0007\u001b[2J\u009b1m\u007f\u0009y\u000az\u000d`
	var hist strings.Builder
	ferry.WriteHistory(&hist, []ferry.Entry{{
		Commit: strings.Repeat("a", 40), Time: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Author: evil + " <e@example.com>", Action: "manual", Subject: evil,
		Images:  []ferry.Image{{Name: "r.example/team/hello", Tag: "v1"}},
		Sources: []audit.Source{{SourceCommit: evil, BuildID: evil}},
	}})
	if hasControl(hist.String(), "\n") || strings.Count(hist.String(), shown) != 4 {
		t.Errorf("history (want %s four times, no raw controls):\n%q", shown, hist.String())
	}
	var diff strings.Builder
	ferry.WriteDiff(&diff, &ferry.DiffResult{
		From: "candidate@" + strings.Repeat("b", 40), To: "production@" + strings.Repeat("c", 40), Path: "apps", Changed: true,
		Apps: []ferry.AppDiff{{
			Dir:      "apps/" + evil,
			Images:   []ferry.ImageChange{{Name: "r.example/" + evil, Old: "r.example/" + evil + ":v0", New: "r.example/" + evil + ":v1"}},
			Added:    []string{"apps/" + evil + "/a.yaml"},
			Removed:  []string{"apps/" + evil + "/b.yaml"},
			Modified: []string{"apps/" + evil + "/c.yaml"},
		}},
		Patch: "+a: \"" + evil + "\"\n",
	}, true)
	// The patch keeps its lines and tabs; everything else is escaped.
	if hasControl(diff.String(), "\n\t\r") || !strings.Contains(diff.String(), `+a: "x\u001b]0;pwned\u0007\u001b[2J\u009b1m\u007f`) ||
		strings.Count(diff.String(), shown) != 5 {
		t.Errorf("diff:\n%q", diff.String())
	}
}
func TestPrintable(t *testing.T) {
	tests := []struct{ in, keep, want string }{
		{"plain text, é € 日本", "", "plain text, é € 日本"},
		{"a\x1b[2Jb", "", `a\u001b[2Jb`},
		{"bell\x07", "", `bell\u0007`},
		{"del\x7f", "", `del\u007f`},
		{"c1 \u009b2J \u0085", "", `c1 \u009b2J \u0085`},
		{"bare \x9b byte", "", `bare \x9b byte`},
		{"lines\n\ttab\r\n", "\n\t\r", "lines\n\ttab\r\n"},
		{"lines\n\ttab\r\n", "\n", `lines` + "\n" + `\u0009tab\u000d` + "\n"},
		{"\u00a0nbsp stays", "", "\u00a0nbsp stays"},
	}
	for _, tc := range tests {
		if got := ferry.Printable(tc.in, tc.keep); got != tc.want {
			t.Errorf("Printable(%q, %q) = %q, want %q", tc.in, tc.keep, got, tc.want)
		}
	}
}
