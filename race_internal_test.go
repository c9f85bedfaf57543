//go:build race

package chatroom

// raceEnabled reports whether the race detector is on: its runtime changes
// how memory is allocated and kept, so memory measurements skip under it
// and run in a plain "go test" (.ci/run does both).
const raceEnabled = true
