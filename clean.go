package chatroom

import "unicode/utf8"

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
// the framing or drive a terminal, and returns the extended slice:
//
//   - invalid UTF-8 bytes become U+FFFD;
//   - control runes are dropped: C0 except tab, DEL, and C1;
//   - the bidirectional controls are dropped (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069): they reorder a line on screen and let
//     one client forge what another seems to say;
//   - the line and paragraph separators U+2028 and U+2029 are dropped: a
//     receiver that splits lines the Unicode way would see a forged line;
//   - the invisible U+200B, U+2060 and U+FEFF are dropped: they make one
//     word look like another ("ex\u200bit" like "exit"). U+200C and U+200D
//     stay, since scripts and emoji need them.
//
// The result holds at most max bytes: a replacement character is three
// bytes where the invalid byte was one, so a line that grows past max is cut
// at the last whole rune that fits.
func appendClean(dst, src []byte, max int) []byte {
	start := len(dst)
	// Fast path: printable ASCII and tabs pass through unchanged.
	i := 0
	for i < len(src) {
		c := src[i]
		if c < 0x20 && c != '\t' || c >= 0x7f {
			break
		}
		i++
	}
	if i > max {
		i = max
	}
	dst = append(dst, src[:i]...)
	if i == max {
		return dst
	}
	for i < len(src) {
		r, size := utf8.DecodeRune(src[i:])
		i += size
		if dropRune(r) {
			continue
		}
		if len(dst)-start+utf8.RuneLen(r) > max {
			break
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// dropRune reports whether r is removed from relayed text. utf8.RuneError
// is kept: it is what an invalid byte decodes to, and it is harmless.
func dropRune(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\t'
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
