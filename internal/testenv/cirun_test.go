package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// .ci/run turns missing servers into failures for the README's test command,
// and runs exactly that command.
func TestCIRunRequiresServers(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "go test ") {
			command, _, _ = strings.Cut(line, "#")
			command = strings.TrimSpace(command)
			break
		}
	}
	if command == "" {
		t.Fatal("README.md has no line starting `go test `: its test command")
	}
	run, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(run), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	testAt := slices.Index(lines, command)
	if testAt < 0 {
		t.Fatalf(".ci/run does not run the README's test command %q", command)
	}
	if testAt != len(lines)-1 {
		t.Errorf(".ci/run runs %q after the README's test command", lines[testAt+1:])
	}
	exportAt := slices.Index(lines, "export "+Var+"=1")
	if exportAt < 0 || exportAt > testAt {
		t.Errorf(".ci/run does not export %s=1 before %q", Var, command)
	}
}
