package pipelines

// A tiny evaluator for the GitHub Actions expressions the workflows and
// action.yml use: context paths, string, number and boolean literals, ==,
// !=, !, && and ||, and parentheses. Functions, and a property that is not
// there, are errors: the test would rather fail than guess.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// lenient is a context object whose missing properties are null, as step
// outputs a step did not write are.
type lenient map[string]string

type exprParser struct {
	src string
	pos int
	ctx map[string]any
}

// evalExpr evaluates the inside of one ${{ }}.
func evalExpr(src string, ctx map[string]any) (any, error) {
	p := &exprParser{src: src, ctx: ctx}
	v, err := p.or()
	if err != nil {
		return nil, fmt.Errorf("${{ %s }}: %v", strings.TrimSpace(src), err)
	}
	p.space()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("${{ %s }}: unexpected %q", strings.TrimSpace(src), p.src[p.pos:])
	}
	return v, nil
}

func (p *exprParser) space() {
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *exprParser) eat(tok string) bool {
	p.space()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

// Both sides are always evaluated, unlike GitHub, so that a bad reference
// fails even where the runner would short-circuit past it.
func (p *exprParser) or() (any, error) {
	l, err := p.and()
	for err == nil && p.eat("||") {
		var r any
		if r, err = p.and(); !truthy(l) {
			l = r
		}
	}
	return l, err
}

func (p *exprParser) and() (any, error) {
	l, err := p.cmp()
	for err == nil && p.eat("&&") {
		var r any
		if r, err = p.cmp(); truthy(l) {
			l = r
		}
	}
	return l, err
}

func (p *exprParser) cmp() (any, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	switch {
	case p.eat("=="):
		r, err := p.unary()
		return looseEqual(l, r), err
	case p.eat("!="):
		r, err := p.unary()
		return !looseEqual(l, r), err
	}
	return l, nil
}

func (p *exprParser) unary() (any, error) {
	if p.eat("!") {
		v, err := p.unary()
		return !truthy(v), err
	}
	return p.primary()
}

func (p *exprParser) primary() (any, error) {
	p.space()
	if p.pos >= len(p.src) {
		return nil, fmt.Errorf("unexpected end")
	}
	switch c := p.src[p.pos]; {
	case c == '(':
		p.pos++
		v, err := p.or()
		if err == nil && !p.eat(")") {
			err = fmt.Errorf("missing )")
		}
		return v, err
	case c == '\'':
		var b strings.Builder
		for p.pos++; p.pos < len(p.src); p.pos++ {
			if p.src[p.pos] == '\'' {
				if p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' {
					b.WriteByte('\'')
					p.pos++
					continue
				}
				p.pos++
				return b.String(), nil
			}
			b.WriteByte(p.src[p.pos])
		}
		return nil, fmt.Errorf("unterminated string")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		for p.pos++; p.pos < len(p.src) && strings.IndexByte("0123456789.xXabcdefABCDEF", p.src[p.pos]) >= 0; p.pos++ {
		}
		return strconv.ParseFloat(p.src[start:p.pos], 64)
	}
	name := p.ident()
	if name == "" {
		return nil, fmt.Errorf("unexpected %q", p.src[p.pos:])
	}
	switch name {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if p.eat("(") {
		return nil, fmt.Errorf("function %s() is not modelled", name)
	}
	v, ok := p.ctx[name]
	if !ok {
		return nil, fmt.Errorf("unknown context %q", name)
	}
	where := name
	for {
		var key string
		switch {
		case p.eat("."):
			if key = p.ident(); key == "" {
				return nil, fmt.Errorf("%s.: want a property name", where)
			}
		case p.eat("["):
			k, err := p.or()
			if err != nil {
				return nil, err
			}
			if !p.eat("]") {
				return nil, fmt.Errorf("missing ]")
			}
			key = format(k)
		default:
			return v, nil
		}
		switch o := v.(type) {
		case map[string]any:
			if v, ok = o[key]; !ok {
				return nil, fmt.Errorf("%s has no property %q", where, key)
			}
		case lenient:
			if s, ok := o[key]; ok {
				v = s
			} else {
				v = nil
			}
		default:
			return nil, fmt.Errorf("%s is not an object; cannot read %q", where, key)
		}
		where += "." + key
	}
}

func (p *exprParser) ident() string {
	p.space()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || p.pos > start && (c == '-' || c >= '0' && c <= '9') {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0 && !math.IsNaN(v)
	case string:
		return v != ""
	}
	return true
}

// looseEqual is GitHub's ==: strings compare ignoring case; values of
// different types compare as numbers.
func looseEqual(a, b any) bool {
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return strings.EqualFold(sa, sb)
		}
	}
	if a == nil && b == nil {
		return true
	}
	na, nb := number(a), number(b)
	return na == nb && !math.IsNaN(na)
}

func number(v any) float64 {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		if v {
			return 1
		}
		return 0
	case float64:
		return v
	case string:
		if strings.TrimSpace(v) == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return f
		}
	}
	return math.NaN()
}

// format turns a value into the text GitHub pastes for ${{ }}.
func format(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		return v
	}
	return fmt.Sprintf("%v", v)
}

// interpolate replaces every ${{ }} in s, calling seen with each
// expression's text.
func interpolate(s string, ctx map[string]any, seen func(string)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := exprEnd(s[i+3:])
		if end < 0 {
			return "", fmt.Errorf("%q: unterminated ${{", s)
		}
		src := s[i+3 : i+3+end]
		if seen != nil {
			seen(strings.TrimSpace(src))
		}
		v, err := evalExpr(src, ctx)
		if err != nil {
			return "", err
		}
		if _, ok := v.(map[string]any); ok {
			return "", fmt.Errorf("${{ %s }} is an object, not text", strings.TrimSpace(src))
		}
		b.WriteString(format(v))
		s = s[i+3+end+2:]
	}
}

// exprEnd finds the }} that closes an expression, skipping string literals.
func exprEnd(s string) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			quoted = !quoted
		case !quoted && strings.HasPrefix(s[i:], "}}"):
			return i
		}
	}
	return -1
}

// evalIf evaluates an if: condition, with or without ${{ }}.
func evalIf(cond string, ctx map[string]any, seen func(string)) (bool, error) {
	cond = strings.TrimSpace(cond)
	if cond == "" {
		return true, nil
	}
	if strings.HasPrefix(cond, "${{") && strings.HasSuffix(cond, "}}") && exprEnd(cond[3:]) == len(cond)-5 {
		cond = cond[3 : len(cond)-2]
	}
	if seen != nil {
		seen(strings.TrimSpace(cond))
	}
	v, err := evalExpr(cond, ctx)
	return truthy(v), err
}
