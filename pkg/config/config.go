package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// FileName is where ferry looks for the file: at the env repo's root.
const FileName = "ferry.yaml"

// Carry is what a promotion into an environment carries from the one
// before it.
type Carry string

const (
	// CarryTree copies each app's whole directory: the environments differ
	// only in where they live (branch or repository), not in what they hold.
	CarryTree Carry = "tree"
	// CarryImages pins the image references the source runs and leaves the
	// rest of the target's directory, its own configuration, alone.
	CarryImages Carry = "images"
)

// Config is a parsed, valid ferry.yaml.
type Config struct {
	// File is the name Parse was given, for messages.
	File string
	// App is the one app of an env repo whose paths lack {app}, as in
	// envs/{env} (the top-level app: key); "" when each app has its own
	// directory. With it, every environment holds this app and no other.
	App string
	// Environments in promotion order: deploy writes to the first; a
	// promotion into one reads from the one before it.
	Environments []Environment
}

// Environment is one environment with every default applied.
type Environment struct {
	Name string
	// Repos are the repositories the environment lives in. Empty means the
	// one repository ferry was given (--repo); more than one means fan-out:
	// every write goes to each.
	Repos []string
	// Branch in each of Repos.
	Branch string
	// Path is each app's directory in Branch.
	Path Template
	// Carry is what a promotion into this environment carries. It is
	// empty for the first environment, which nothing is promoted into.
	Carry Carry
	// PullRequest asks for changes to go through a pull request rather
	// than a push to Branch.
	PullRequest bool
	// Line is where the environment starts in the file.
	Line int
}

// Dir is app's directory in the environment; a path without {app} is the
// directory of the repo's one app (Config.App), whatever app says.
func (e *Environment) Dir(app string) string { return e.Path.Expand(e.Name, app) }

// Sentinel errors of the lookups; each error wraps one.
var (
	// ErrUnknownEnv: the file declares no environment of that name.
	ErrUnknownEnv = errors.New("unknown environment")
	// ErrNoPrevious: the first environment has nothing to promote from.
	ErrNoPrevious = errors.New("no environment before it")
	// ErrNoNext: the last environment has nothing to promote to.
	ErrNoNext = errors.New("no environment after it")
)

// Load reads and parses the file at path; messages name it as given.
// When there is no file the error matches fs.ErrNotExist: the file is
// optional, and the caller decides what its absence means.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Names returns the environments' names in promotion order.
func (c *Config) Names() []string {
	names := make([]string, len(c.Environments))
	for i, e := range c.Environments {
		names[i] = e.Name
	}
	return names
}

// First is the environment deploy writes to.
func (c *Config) First() *Environment { return &c.Environments[0] }

// Env returns the environment called name. The error for an unknown name
// wraps ErrUnknownEnv and lists the known ones.
func (c *Config) Env(name string) (*Environment, error) {
	i, err := c.index(name)
	if err != nil {
		return nil, err
	}
	return &c.Environments[i], nil
}

// Previous returns the environment a promotion into name reads from. For
// the first environment the error wraps ErrNoPrevious.
func (c *Config) Previous(name string) (*Environment, error) {
	i, err := c.index(name)
	if err != nil {
		return nil, err
	}
	if i == 0 {
		return nil, fmt.Errorf("%s is the first environment in %s: %w", name, c.File, ErrNoPrevious)
	}
	return &c.Environments[i-1], nil
}

// Next returns the environment after name, the one it promotes to. For
// the last environment the error wraps ErrNoNext.
func (c *Config) Next(name string) (*Environment, error) {
	i, err := c.index(name)
	if err != nil {
		return nil, err
	}
	if i == len(c.Environments)-1 {
		return nil, fmt.Errorf("%s is the last environment in %s: %w", name, c.File, ErrNoNext)
	}
	return &c.Environments[i+1], nil
}

func (c *Config) index(name string) (int, error) {
	for i, e := range c.Environments {
		if e.Name == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w %q in %s (known: %s)", ErrUnknownEnv, name, c.File, strings.Join(c.Names(), ", "))
}
