package irc

import (
	"strings"
)

// This file is IRC's framing: a line a client sent, parsed into its
// command and parameters, and the lines the face writes. Modern IRC
// (modern.ircdocs.horse) describes both; IRCv3 adds the tags.

// maxParams is the most parameters a message has (RFC 1459): the
// fifteenth takes the rest of the line.
const maxParams = 15

// maxClientTags is the most bytes of tags a client may send, without
// the "@" and the space after them (IRCv3 message-tags); a line with more
// is answered with 417 and ignored.
const maxClientTags = 4094

// message is a line a client sent: its command, in upper case, and its
// parameters. The source a client may give is ignored, and so are its
// tags: the hub carries none of them.
type message struct {
	command string
	params  []string
	tags    int // bytes of tags, without the "@" and the space
}

// parse parses line, without its line ending. It reports false for a line
// that holds no command (blank, or only tags and a source).
func parse(line []byte) (message, bool) {
	var m message
	s := string(line)
	if strings.HasPrefix(s, "@") {
		tags, rest, _ := strings.Cut(s[1:], " ")
		m.tags = len(tags)
		s = rest
	}
	s = strings.TrimLeft(s, " ")
	if strings.HasPrefix(s, ":") {
		_, s, _ = strings.Cut(s, " ") // the source: ignored
		s = strings.TrimLeft(s, " ")
	}
	command, s, _ := strings.Cut(s, " ")
	if command == "" {
		return m, false
	}
	m.command = strings.ToUpper(command)
	for s != "" {
		if s[0] == ' ' {
			s = s[1:] // empty parameters between spaces are dropped
			continue
		}
		if s[0] == ':' || len(m.params) == maxParams-1 {
			m.params = append(m.params, strings.TrimPrefix(s, ":"))
			break
		}
		var p string
		p, s, _ = strings.Cut(s, " ")
		m.params = append(m.params, p)
	}
	return m, true
}

// param returns the i-th parameter, or "".
func (m *message) param(i int) string {
	if i < len(m.params) {
		return m.params[i]
	}
	return ""
}

// appendLine appends one line to b: source (without its ":"; "" for
// none), command and params, the last one written as a trailing
// parameter (after ":") when trailing is set or when it must be (it is
// empty, holds a space, or starts with ":"), then "\r\n". Parameters
// other than the last must be non-empty and hold no space; what the
// face writes there is names, numbers and tokens.
func appendLine(b []byte, source, command string, trailing bool, params ...string) []byte {
	if source != "" {
		b = append(b, ':')
		b = append(b, source...)
		b = append(b, ' ')
	}
	b = append(b, command...)
	for i, p := range params {
		b = append(b, ' ')
		if i == len(params)-1 && (trailing || p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0) {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	return append(b, '\r', '\n')
}

// mask matches a name against an IRC mask: "*" stands for any run of
// characters, "?" for any one; case is ignored (ASCII, as the hub's
// names).
func mask(pattern, name string) bool {
	p, n := lowerASCII(pattern), lowerASCII(name)
	// The classic backtracking matcher: on a mismatch, go back to the
	// last "*" and let it take one more character.
	pi, ni, star, mark := 0, 0, -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// isMask reports whether s has mask characters.
func isMask(s string) bool { return strings.ContainsAny(s, "*?") }

// foldEqual reports whether two names are the same, ignoring ASCII case
// (CASEMAPPING=ascii, as the hub's names).
func foldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// lowerASCII returns s with its ASCII letters in lower case.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lower(b[j])
			}
			return string(b)
		}
	}
	return s
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
