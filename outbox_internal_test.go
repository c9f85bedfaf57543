package chatroom

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAdvance checks the bookkeeping of a write that ends part way through
// a batch: how many lines it completed, and where the next one resumes.
func TestAdvance(t *testing.T) {
	lines := [][]byte{[]byte("abc\n"), []byte("de\n"), []byte("fghij\n")} // 4 + 3 + 6 bytes
	tests := []struct {
		name       string
		skip, n    int
		whole, off int
	}{
		{"nothing written", 0, 0, 0, 0},
		{"into the first line", 0, 2, 0, 2},
		{"the first line exactly", 0, 4, 1, 0},
		{"into the second line", 0, 5, 1, 1},
		{"into the last line", 0, 9, 2, 2},
		{"everything", 0, 13, 3, 0},
		{"resuming, nothing written", 2, 0, 0, 2},
		{"resuming, into the first line", 1, 2, 0, 3},
		{"resuming, the first line's rest", 1, 3, 1, 0},
		{"resuming, everything", 3, 10, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole, off := advance(lines, tt.skip, tt.n)
			assert.Equal(t, tt.whole, whole, "lines completed")
			assert.Equal(t, tt.off, off, "offset into the next line")
			// What is left to write is exactly what appendLines joins
			// from that point on.
			all := appendLines(nil, lines, 0)
			rest := appendLines(nil, lines[whole:], off)
			assert.Equal(t, string(all[tt.skip+tt.n:]), string(rest))
		})
	}
}
