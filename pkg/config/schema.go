package config

import (
	_ "embed"
	"slices"
)

//go:embed ferry.schema.json
var schema []byte

// Schema returns the format as a JSON Schema (draft 2020-12), for editors
// (yaml-language-server's "# yaml-language-server: $schema=..." and the
// like). It checks each value on its own; Parse also checks what spans
// values: repeated keys and names, where each environment's directory
// lands, and git's rules for branch names.
func Schema() []byte { return slices.Clone(schema) }
