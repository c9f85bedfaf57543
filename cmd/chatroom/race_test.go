//go:build race

package main

// raceEnabled reports whether the race detector is on: it slows the test
// process many times over, so tests that measure time or memory skip
// under it and run in a plain "go test" (.ci/run does both).
const raceEnabled = true
