package pipelines

// Just enough of Docker to build ferry as the Dockerfile does without a
// Docker engine: the Dockerfile's instructions, .dockerignore's rules for
// the build context, and the shell words of the RUN line that builds.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
	Line int
}

// stage is a FROM and the instructions up to the next one.
type stage struct {
	From, Name string
	Instrs     []instruction
}

// parseDockerfile splits a Dockerfile into stages. Only the syntax ferry's
// Dockerfile may use is accepted: comments, line continuations, one
// instruction per line; parser directives and heredocs are refused.
func parseDockerfile(src string) ([]stage, error) {
	var stages []stage
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "# syntax=") || strings.HasPrefix(line, "# escape=") {
				return nil, fmt.Errorf("line %d: parser directives are not modelled", i+1)
			}
			continue
		}
		start := i + 1
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue // comments inside a continuation are dropped
			}
			line = strings.TrimSuffix(line, `\`) + " " + next
		}
		if strings.Contains(line, "<<") {
			return nil, fmt.Errorf("line %d: heredocs are not modelled", start)
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := stage{From: f[0]}
			switch {
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.Name = f[2]
			case len(f) != 1:
				return nil, fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", start, in.Args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			return nil, fmt.Errorf("line %d: %s before FROM", start, in.Cmd)
		}
		stages[len(stages)-1].Instrs = append(stages[len(stages)-1].Instrs, in)
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM")
	}
	return stages, nil
}

// find returns the stage's instructions of one kind.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instrs {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goBuild is the Dockerfile's `go build` command.
type goBuild struct {
	Line    int
	Env     []string // leading NAME=value assignments, e.g. CGO_ENABLED=0
	Args    []string // go's arguments, with the Dockerfile's -o
	Out     string   // the -o path inside the image
	Pkg     string   // the package built, e.g. ./cmd/ferry
	Workdir string
	Vars    map[string]string // the ARG values it was expanded with
}

// findGoBuild finds the single RUN of the build stage that runs `go
// build`, and expands its words with the stage's ARGs (defaults overridden
// by args, as --build-arg does).
func findGoBuild(st stage, args map[string]string) (*goBuild, error) {
	vars := map[string]string{}
	b := &goBuild{}
	for _, in := range st.Instrs {
		switch in.Cmd {
		case "ARG":
			name, def, _ := strings.Cut(in.Args, "=")
			vars[name] = def
			if v, ok := args[name]; ok {
				vars[name] = v
			}
		case "ENV":
			return nil, fmt.Errorf("line %d: ENV in the build stage is not modelled", in.Line)
		case "WORKDIR":
			b.Workdir = in.Args
		case "RUN":
			if !strings.Contains(in.Args, "go build") {
				continue
			}
			if b.Args != nil {
				return nil, fmt.Errorf("line %d: a second RUN with go build", in.Line)
			}
			if strings.HasPrefix(in.Args, "[") {
				return nil, fmt.Errorf("line %d: exec-form RUN is not modelled", in.Line)
			}
			words, err := shellWords(in.Args, vars)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", in.Line, err)
			}
			b.Line = in.Line
			for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
				b.Env, words = append(b.Env, words[0]), words[1:]
			}
			if len(words) < 3 || words[0] != "go" || words[1] != "build" {
				return nil, fmt.Errorf("line %d: want [VAR=value...] go build ..., got %q", in.Line, words)
			}
			b.Args = words[1:]
			for i := 0; i < len(b.Args); i++ {
				if b.Args[i] == "-o" && i+1 < len(b.Args) {
					b.Out = b.Args[i+1]
				}
			}
			b.Pkg = b.Args[len(b.Args)-1]
		}
	}
	if b.Args == nil {
		return nil, errors.New("no RUN ... go build in the build stage")
	}
	if b.Out == "" || !strings.HasPrefix(b.Out, "/") {
		return nil, fmt.Errorf("line %d: want -o with an absolute path, got %q", b.Line, b.Out)
	}
	b.Vars = vars
	return b, nil
}

// shellWords splits s into words as sh does for a simple command: quotes,
// backslashes, and $NAME / ${NAME} expanded from vars. Anything that would
// make it more than one simple command (; & | < > backquotes $( ) globs) is
// refused, as is an unknown variable, so the test cannot build differently
// from the image.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New(`unterminated "`)
				}
				if s[i] == '"' {
					break
				}
				switch s[i] {
				case '\\':
					if i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
						i++
					}
					cur.WriteByte(s[i])
				case '$':
					n, v, err := expandShellVar(s[i:], vars)
					if err != nil {
						return nil, err
					}
					cur.WriteString(v)
					i += n - 1
				case '`':
					return nil, errors.New("command substitution is not modelled")
				default:
					cur.WriteByte(s[i])
				}
			}
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
				inWord = true
			}
		case c == '$':
			n, v, err := expandShellVar(s[i:], vars)
			if err != nil {
				return nil, err
			}
			if strings.ContainsAny(v, " \t\n*?[") {
				return nil, fmt.Errorf("unquoted %s expands to %q, which the shell would split or glob", s[i:i+n], v)
			}
			cur.WriteString(v)
			i += n - 1
			inWord = true
		case strings.IndexByte(";&|<>`()*?[", c) >= 0:
			return nil, fmt.Errorf("%q: only a single simple command is modelled", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

var shellName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// expandShellVar expands the $NAME or ${NAME} at the start of s and
// returns how many bytes it took.
func expandShellVar(s string, vars map[string]string) (int, string, error) {
	var name string
	var n int
	switch {
	case strings.HasPrefix(s, "${"):
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return 0, "", errors.New("unterminated ${")
		}
		name, n = s[2:end], end+1
		if !shellName.MatchString(name) || shellName.FindString(name) != name {
			return 0, "", fmt.Errorf("${%s}: only plain ${NAME} is modelled", name)
		}
	case strings.HasPrefix(s, "$("):
		return 0, "", errors.New("command substitution is not modelled")
	default:
		name = shellName.FindString(s[1:])
		if name == "" {
			return 1, "$", nil
		}
		n = 1 + len(name)
	}
	v, ok := vars[name]
	if !ok {
		return 0, "", fmt.Errorf("$%s is not an ARG of the build stage", name)
	}
	return n, v, nil
}

// ignoreRule is one .dockerignore line.
type ignoreRule struct {
	pattern string
	re      *regexp.Regexp
	include bool // a !pattern
}

// parseDockerignore reads .dockerignore as Docker does: one pattern a line,
// # comments, ! to re-include, * ? and ** as in Go's filepath.Match plus
// ** for any number of directories. Character classes are refused.
func parseDockerignore(src string) ([]ignoreRule, error) {
	var rules []ignoreRule
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{pattern: line}
		if strings.HasPrefix(line, "!") {
			r.include, line = true, strings.TrimSpace(line[1:])
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; c {
			case '*':
				if strings.HasPrefix(line[i:], "**/") {
					re.WriteString("(.*/)?")
					i += 2
				} else if strings.HasPrefix(line[i:], "**") {
					re.WriteString(".*")
					i++
				} else {
					re.WriteString("[^/]*")
				}
			case '?':
				re.WriteString("[^/]")
			case '[':
				return nil, fmt.Errorf("%q: character classes are not modelled", r.pattern)
			case '\\':
				if i+1 < len(line) {
					i++
					re.WriteString(regexp.QuoteMeta(line[i : i+1]))
				}
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		var err error
		if r.re, err = regexp.Compile(re.String()); err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// ignored says whether Docker leaves rel (slash-separated, relative to the
// context) out of the build context: the last rule matching the path or
// one of its parent directories decides.
func ignored(rules []ignoreRule, rel string) bool {
	out := false
	for _, r := range rules {
		parts := strings.Split(rel, "/")
		for i := range parts {
			if r.re.MatchString(strings.Join(parts[:i+1], "/")) {
				out = !r.include
				break
			}
		}
	}
	return out
}

// buildContext copies the files of root that .dockerignore lets through
// into dir and returns their relative paths.
func buildContext(root, dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	rules, err := parseDockerignore(string(data))
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %v", err)
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if rel == ".git" && ignored(rules, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if ignored(rules, rel) || !d.Type().IsRegular() {
			return nil
		}
		files = append(files, rel)
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, src, 0o644)
	})
	return files, err
}

// buildLikeDockerfile builds ferry to out as the Dockerfile's build stage
// does: from a copy of the build context in ctxDir, with the RUN line's
// environment and go arguments, the build args given as --build-arg would.
func buildLikeDockerfile(root, ctxDir, out string, buildArgs map[string]string) ([]stage, *goBuild, error) {
	src, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, nil, err
	}
	stages, err := parseDockerfile(string(src))
	if err != nil {
		return nil, nil, fmt.Errorf("Dockerfile: %v", err)
	}
	b, err := findGoBuild(stages[0], buildArgs)
	if err != nil {
		return nil, nil, fmt.Errorf("Dockerfile: %v", err)
	}
	if _, err := buildContext(root, ctxDir); err != nil {
		return nil, nil, fmt.Errorf("build context: %v", err)
	}
	args := append([]string(nil), b.Args...)
	for i := range args {
		if args[i] == "-o" {
			args[i+1] = out
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ctxDir
	cmd.Env = append(os.Environ(), b.Env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("go %s (in the build context): %v\n%s", strings.Join(args, " "), err, msg)
	}
	return stages, b, nil
}
