package main

import (
	"encoding/json"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goSnippet is a fenced Go block in a Markdown file.
var goSnippet = regexp.MustCompile("(?s)```go\n(.*?)```")

// TestReadmeSnippetsBuild builds every Go block of the README, as a user
// who copies one into a file of their own would: each is a whole program.
// It builds inside this module (through an overlay, so nothing is written
// to the tree), which requires the engine, web, irc and natsbus, so a
// snippet may use any of them.
func TestReadmeSnippetsBuild(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	blocks := goSnippet.FindAllSubmatch(readme, -1)
	require.NotEmpty(t, blocks, "the README shows how to embed the package")

	wd, err := os.Getwd()
	require.NoError(t, err)
	for i, block := range blocks {
		t.Run("snippet"+strconv.Itoa(i+1), func(t *testing.T) {
			t.Parallel()
			assert.Regexp(t, `^package main\n`, string(block[1]), "a snippet is a whole program a user can copy")
			dir := t.TempDir()
			src := filepath.Join(dir, "main.go")
			require.NoError(t, os.WriteFile(src, block[1], 0o600))
			pkg := filepath.Join(wd, "readme-snippet-"+strconv.Itoa(i+1))
			overlay, err := json.Marshal(map[string]map[string]string{
				"Replace": {filepath.Join(pkg, "main.go"): src},
			})
			require.NoError(t, err)
			overlayFile := filepath.Join(dir, "overlay.json")
			require.NoError(t, os.WriteFile(overlayFile, overlay, 0o600))

			formatted, err := format.Source(block[1])
			require.NoError(t, err, "README snippet %d does not parse", i+1)
			assert.Equal(t, string(formatted), string(block[1]), "README snippet %d is not gofmt'd", i+1)

			cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", os.DevNull, pkg)
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "README snippet %d does not build:\n%s\n%s", i+1, out, block[1])
		})
	}
}
