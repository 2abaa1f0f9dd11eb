package image_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps this package free of git, YAML and the rest of
// ferry: it parses references and talks to registries, nothing more.
func TestDependencies(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/ferrycd/ferry/",
		"github.com/go-git/",
		"sigs.k8s.io/",
		"gopkg.in/yaml",
		"go.yaml.in/",
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/ferrycd/ferry/pkg/image" {
			continue
		}
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("pkg/image depends on %s", dep)
			}
		}
	}
}
