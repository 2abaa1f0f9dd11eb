// Package fuzzcorpus loads hand-written fuzz seeds kept in the
// repository's testdata/fuzz, in Go's corpus format, for the fuzz targets
// that take one string.
package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// AddStrings adds each seed in dir, a file holding one string value
// ("go test fuzz v1", then string("...")).
func AddStrings(f *testing.F, dir string) {
	f.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		s, err := ParseString(data)
		if err != nil {
			f.Fatalf("%s: %v", e.Name(), err)
		}
		f.Add(s)
	}
}

// ParseString reads one corpus file holding a single string value.
func ParseString(data []byte) (string, error) {
	header, value, _ := strings.Cut(string(data), "\n")
	if strings.TrimSpace(header) != "go test fuzz v1" {
		return "", fmt.Errorf("first line is %q, want \"go test fuzz v1\"", header)
	}
	quoted, ok := strings.CutPrefix(strings.TrimSpace(value), "string(")
	if !ok || !strings.HasSuffix(quoted, ")") {
		return "", fmt.Errorf("want one string(...) value, got %q", value)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
	if err != nil {
		return "", fmt.Errorf("string value: %w", err)
	}
	return s, nil
}
