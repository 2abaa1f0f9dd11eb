//go:build !unix

package notify

import (
	"os"
	"os/exec"
)

// newProcessGroup does nothing where there are no Unix process groups.
func newProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the hook's process only.
func killProcessGroup(p *os.Process) { _ = p.Kill() }
