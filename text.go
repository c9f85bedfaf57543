package chatroom

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the wire protocol's text: how a received line is cleaned
// and how every line the server sends is spelled. Each line is built once,
// into a byte slice that is then shared by every recipient's outbox. How
// input is cut into lines is in framing.go.

// timeLayout stamps relayed lines and room notices.
const timeLayout = "2006-01-02 15:04:05"

// Lines sent to one client only. They are constant, so they are built once.
var (
	lineBye      = []byte("* bye\n")
	lineIdle     = []byte("* idle timeout\n")
	lineShutdown = []byte("* server shutting down\n")
)

func lineTooLong(max int) []byte {
	return []byte("* error: message too long (max " + strconv.Itoa(max) + " bytes)\n")
}

func lineRoomFull(max int) []byte {
	return []byte("* room is full (" + strconv.Itoa(max) + " clients)\n")
}

func lineTooManyFromHost(max int) []byte {
	return []byte("* too many connections from your address (max " + strconv.Itoa(max) + ")\n")
}

var lineJoinTooFast = []byte("* too many connections, try again later\n")

func lineWelcome(name string, online int) []byte {
	return []byte("* welcome " + name + ", " + strconv.Itoa(online) + " online\n")
}

// lineMe formats "<ts> * <name> <action>\n"; action must be clean.
func lineMe(now time.Time, name, action string) []byte {
	return lineNotice(now, name+" "+action)
}

// lineWhisper formats "<ts> <from> whispers: <text>\n"; text must be clean.
func lineWhisper(now time.Time, from, text string) []byte {
	b := make([]byte, 0, len(timeLayout)+1+len(from)+len(" whispers: ")+len(text)+1)
	b = now.AppendFormat(b, timeLayout)
	b = append(b, ' ')
	b = append(b, from...)
	b = append(b, " whispers: "...)
	b = append(b, text...)
	return append(b, '\n')
}

// lineRenamed is the notice the others get when old takes the name name.
func lineRenamed(now time.Time, old, name string) []byte {
	return lineNotice(now, old+" is now "+name)
}

func lineYouAre(name string) []byte { return []byte("* you are now " + name + "\n") }

// lineWho lists who is online; names must already be sorted.
func lineWho(names []string) []byte {
	return []byte("* " + strconv.Itoa(len(names)) + " online: " + strings.Join(names, ", ") + "\n")
}

// lineKicked is the last line of a client kicked for reason (clean, or "").
func lineKicked(reason string) []byte {
	if reason == "" {
		return []byte("* kicked\n")
	}
	return []byte("* kicked: " + reason + "\n")
}

// noticeKicked follows "<name> left" when the client was kicked for reason.
func noticeKicked(reason string) string {
	if reason == "" {
		return " (kicked)"
	}
	return " (kicked: " + reason + ")"
}

// Replies to commands and to a client that is not let in.
var (
	lineInvalidNick   = []byte("* error: invalid nickname\n")
	lineNickTaken     = []byte("* error: nickname taken\n")
	lineNamesByServer = []byte("* error: names are set by the server\n")
	lineNameTaken     = []byte("* error: name taken\n")
	lineNamesDown     = []byte("* error: names cannot be checked now, try again later\n") // the bus cannot reach its peers
	lineRejected      = []byte("* error: message rejected\n")
	lineAuthTimeout   = []byte("* error: authentication timed out\n")
	lineAuthFailed    = []byte("* error: authentication failed\n")
	lineUsageMe       = []byte("* error: usage: /me TEXT\n")
	lineUsageMsg      = []byte("* error: usage: /msg NAME TEXT\n")
	lineHelp          = []byte(helpText)
)

const helpText = `* commands:
*   /nick NAME      take a name: 1 to 32 letters, digits and _-.[]
*   /who            who is here
*   /me TEXT        say what you do: "* NAME TEXT"
*   /msg NAME TEXT  whisper to NAME alone
*   /quit           leave (so does exit)
*   /help           this list
*   //text          say a line that starts with /
`

// lineNoSuchClient answers a whisper to a name nobody has.
func lineNoSuchClient(name string) []byte {
	return []byte("* error: no such client " + name + "\n")
}

// lineUnknownCommand answers a command the room does not know.
func lineUnknownCommand(word string) []byte {
	return []byte("* error: unknown command " + word + " (try /help)\n")
}

// lineAuthError refuses a client with the auth hook's error text (clean).
func lineAuthError(text string) []byte {
	return []byte("* error: " + text + "\n")
}

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

// lineJoined is the notice the others get when name joins.
func lineJoined(now time.Time, name string) []byte {
	return lineNotice(now, name+" joined")
}

// noticeTooSlow follows "<name> left" when the room evicted the client.
const noticeTooSlow = " (too slow)"

// lineLeft is the notice the others get when name leaves; notice, from
// the reason's effects (reason.go), follows "left".
func lineLeft(now time.Time, name, notice string) []byte {
	return lineNotice(now, name+" left"+notice)
}

// lineSay formats "<ts> <name> say: <text>\n" in one allocation, where
// text is raw cleaned by appendClean, and returns the line and the text
// within it.
func lineSay(now time.Time, name string, raw []byte, max int) (line, text []byte) {
	b := make([]byte, 0, len(timeLayout)+1+len(name)+len(" say: ")+len(raw)+1)
	b = now.AppendFormat(b, timeLayout)
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, " say: "...)
	start := len(b)
	b = appendClean(b, raw, max)
	end := len(b)
	b = append(b, '\n')
	return b, b[start:end]
}

// lineNotice formats a room notice, "<ts> * <text>\n". text must already
// be clean.
func lineNotice(now time.Time, text string) []byte {
	b := make([]byte, 0, len(timeLayout)+len(" * ")+len(text)+1)
	b = now.AppendFormat(b, timeLayout)
	b = append(b, " * "...)
	b = append(b, text...)
	return append(b, '\n')
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

// isExit reports whether a clean line is the exit command: "exit" in any
// case, with surrounding spaces and tabs ignored.
func isExit(line []byte) bool {
	for len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		line = line[1:]
	}
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if len(line) != 4 {
		return false
	}
	for i, c := range []byte("exit") {
		if line[i]|0x20 != c {
			return false
		}
	}
	return true
}
