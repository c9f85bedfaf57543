package chatroom

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is how text from clients is made safe to show anyone: every
// face's text passes through appendClean before the hub relays it, and
// names are checked here.

// validNick reports whether name may be taken with /nick: 1 to 32 ASCII
// letters, digits and _-.[]
func validNick(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '-', c == '.', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// cleanString is appendClean for a string of any length.
func cleanString(s string) string {
	return string(appendClean(nil, []byte(s), len(s)*3+3))
}

// appendClean appends src to dst with everything removed that could break
// the framing, drive a terminal, or make one line pass for another, and
// returns the extended slice:
//
//   - invalid UTF-8 bytes become U+FFFD;
//   - control runes are dropped: C0, DEL, and C1;
//   - the bidirectional controls are dropped (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069): they reorder a line on screen and let
//     one client forge what another seems to say;
//   - the line and paragraph separators U+2028 and U+2029 are dropped: a
//     receiver that splits lines the Unicode way would see a forged line;
//   - the invisible U+200B, U+2060 and U+FEFF are dropped: they make one
//     word look like another ("ex\u200bit" like "exit"). U+200C and U+200D
//     stay, since scripts and emoji need them;
//   - blanks (a tab, and every space separator: U+0020, U+00A0, U+2000 to
//     U+200A, U+3000...) become one space, a run of them collapses to one,
//     and none is kept at either end: no text can push what follows it to
//     a line of its own on a reader's screen.
//
// The result holds at most max bytes: a replacement character is three
// bytes where the invalid byte was one, so a line that grows past max is cut
// at the last whole rune that fits.
func appendClean(dst, src []byte, max int) []byte {
	start := len(dst)
	blank := false // blanks came since the last rune kept: one space goes before the next
	for i := 0; i < len(src); {
		// Fast path: a run of printable ASCII that is not a blank.
		j := i
		for j < len(src) && src[j] > ' ' && src[j] < 0x7f {
			j++
		}
		if j > i {
			seg := src[i:j]
			room := max - (len(dst) - start)
			if blank {
				room--
			}
			if room <= 0 {
				return dst
			}
			if blank {
				dst, blank = append(dst, ' '), false
			}
			if len(seg) > room {
				return append(dst, seg[:room]...)
			}
			dst, i = append(dst, seg...), j
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		i += size
		switch {
		case isBlank(r):
			blank = len(dst) > start // none at the start
			continue
		case dropRune(r):
			continue
		}
		n := utf8.RuneLen(r)
		if blank {
			n++
		}
		if len(dst)-start+n > max {
			return dst
		}
		if blank {
			dst, blank = append(dst, ' '), false
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// isBlank reports whether r is a blank: a tab, or a space separator
// (Unicode's category Zs).
func isBlank(r rune) bool {
	return r == ' ' || r == '\t' || r >= 0xa0 && unicode.Is(unicode.Zs, r)
}

// dropRune reports whether r is removed from relayed text. utf8.RuneError
// is kept: it is what an invalid byte decodes to, and it is harmless.
func dropRune(r rune) bool {
	switch {
	case r < 0x20:
		return true
	case r >= 0x7f && r <= 0x9f: // DEL and C1
		return true
	case r < 0x061c:
		return false // the fast way out for most scripts
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	}
	switch r {
	case 0x061c, 0x200e, 0x200f: // ALM, LRM, RLM
		return true
	case 0x2028, 0x2029: // line and paragraph separators
		return true
	case 0x200b, 0x2060, 0xfeff: // zero width space, word joiner, zero width no-break space
		return true
	}
	return false
}

// readsAsNotice reports whether an action (/me TEXT, IRC's ACTION) would
// read, in the text protocol's "<ts> * NAME TEXT", as a notice of the
// hub's: a join, a departure, a rename, a topic or mode change, a storm's
// count. Such an action is refused: a client cannot make itself seem to
// leave, or to be someone else.
func readsAsNotice(text string) bool {
	for _, w := range noticeWords {
		if rest, ok := strings.CutPrefix(text, w); ok && (rest == "" || strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, ",")) {
			return true
		}
	}
	return strings.HasPrefix(text, "is now ")
}

// noticeWords are the words that follow a name in the notices.
var noticeWords = []string{"joined", "left", "set the topic:", "cleared the topic", "sets mode"}

// skeleton is what a name looks like, for telling names apart that only
// look different: ASCII case folded; l, I, i, 1 and | as one; O, o and 0
// as one; brackets dropped, and the punctuation at the end ("alice.",
// "alice_", "[alice]", "a1ice" and "aIice" are all alice).
func skeleton(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		switch c := lowerASCII(name[i]); c {
		case 'i', '1', '|':
			b = append(b, 'l')
		case '0':
			b = append(b, 'o')
		case '[', ']', '{', '}', '(', ')':
		default:
			b = append(b, c)
		}
	}
	for len(b) > 1 && strings.IndexByte("_-.`^", b[len(b)-1]) >= 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}
