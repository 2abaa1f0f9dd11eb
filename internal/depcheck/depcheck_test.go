// Package depcheck holds a test that keeps ferry's data flowing one way:
// leaf packages never import each other; only pkg/ferry, pkg/cli and
// pkg/demo combine them.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

func TestLeavesStayLeaves(t *testing.T) {
	leaves := []string{"audit", "envrepo", "image", "manifest"}
	for _, leaf := range leaves {
		out, err := exec.Command("go", "list", "-deps", "github.com/ferrycd/ferry/pkg/"+leaf).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", leaf, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/ferrycd/ferry/") && dep != "github.com/ferrycd/ferry/pkg/"+leaf {
				t.Errorf("pkg/%s imports %s; leaf packages must not depend on other ferry packages", leaf, dep)
			}
		}
	}
}
