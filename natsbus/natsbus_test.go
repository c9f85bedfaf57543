package natsbus_test

import (
	"testing"
)

func TestSmoke(t *testing.T) {
	ns := startNATS(t)
	a, b := startProcess(t, ns.url()), startProcess(t, ns.url())
	alice := join(t, a, "alice")
	bob := join(t, b, "bob")
	allSee(t, []string{"alice", "bob"}, a, b)
	alice.send("hello\n")
	bob.waitFor(ts + " alice say: hello")
	bob.send("/msg alice psst\n")
	alice.waitFor(ts + " bob whispers: psst")
}
