// Package chattest holds what the workspace's tests share: the time
// limits every wait is bounded by, the gate of the long tests, waiting for
// a condition with a deadline, a client of the line protocol that dials,
// reads and expects lines, and throwaway TLS certificates.
//
// It speaks the room's protocol as bytes and lines only: it does not import
// the chatroom package, so that the engine's internal tests (package
// chatroom) can use it too. Helpers that start a room stay with the tests
// of each package.
//
// Every helper that takes a testing.TB reports through it and stops the
// test (require) when a step that later steps depend on fails.
package chattest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// WaitLimit bounds every wait in the tests: a line that has not arrived, or
// a condition that has not come true, by then has failed. It is far longer
// than anything takes on a quiet machine, so that it is only reached when
// something is broken, not when the machine is busy. A wait through work
// whose length grows with the machine's load (a backlog of lines, a storm
// of joins) waits for progress, each step within WaitLimit, not for the
// whole.
const WaitLimit = 15 * time.Second

// Time is the tests' fixed clock reading, and TS how the room prints it
// (its "<ts>"): tests give rooms Clock so that every line is predictable.
var Time = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

// TS is Time as the room prints it.
const TS = "2026-11-28 09:30:00"

// Clock always returns Time: a room's WithClock for tests.
func Clock() time.Time { return Time }

// LongEnv is the environment variable that turns on the long tests (the
// memory, churn, soak and order measurements): they run when it is "1".
// .ci/run sets it.
const LongEnv = "CHATROOM_LONG_TESTS"

// Long skips the calling test unless LongEnv is "1", and under -short in
// any case, saying how to run it. A long test calls it first.
func Long(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skipf("a long test: skipped under -short")
	}
	if os.Getenv(LongEnv) != "1" {
		t.Skipf("a long test: run it with %s=1 go test -run '^%s$' (.ci/run sets %s=1)", LongEnv, topName(t), LongEnv)
	}
}

// topName is the name of t's top-level test, for a -run pattern.
func topName(t testing.TB) string {
	name := t.Name()
	for i := range len(name) {
		if name[i] == '/' {
			return name[:i]
		}
	}
	return name
}

// Eventually waits until cond holds, checking every few milliseconds, and
// stops the test if it does not within WaitLimit: the tests' stand-in for
// a notification the code under test does not give. Unlike testify's
// Eventually it runs cond in the caller's goroutine, so cond may count
// goroutines or call require. format and args say what was awaited.
func Eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	EventuallyWithin(t, WaitLimit, cond, format, args...)
}

// EventuallyWithin is Eventually with a limit of its own, for a test whose
// point is that something happens within limit.
func EventuallyWithin(t testing.TB, limit time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, fmt.Sprintf("not within %v: %s", limit, fmt.Sprintf(format, args...)))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
