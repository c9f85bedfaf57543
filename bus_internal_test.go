package chatroom

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCleanPeer: what comes from a peer is cleaned as cleanString cleans
// it, whether it is clean already (and is kept as it is) or not.
func TestCleanPeer(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "hi", "hello there, you", "a b c", " lead", "trail ", "two  spaces", "tab\there",
		"\x1b[31mred", "del\x7f", "caf\u00e9", "bi\u202edi", "\xff", " ", "x"} {
		assert.Equal(t, cleanString(s), cleanPeer(s), "%q", s)
	}
}

// FuzzCleanPeer: cleanPeer is cleanString, for any text.
func FuzzCleanPeer(f *testing.F) {
	for _, s := range []string{"hi there", " a", "a  b", "\t", "\u00a0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := cleanPeer(s), cleanString(s); got != want {
			t.Fatalf("cleanPeer(%q) = %q, cleanString gives %q", s, got, want)
		}
	})
}
