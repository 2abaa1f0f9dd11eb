package notify_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps this package on the standard library alone: it
// consumes a finished run and knows nothing of git, YAML, registries or the
// rest of ferry.
func TestDependencies(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/ferrycd/ferry/pkg/notify" {
			continue
		}
		// Standard library paths have no dot in their first element.
		first, _, _ := strings.Cut(dep, "/")
		if strings.Contains(first, ".") {
			t.Errorf("pkg/notify depends on %s; it uses the standard library only", dep)
		}
	}
}
