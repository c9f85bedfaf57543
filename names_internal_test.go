package chatroom

import (
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestHeldNames: a name given up is held for its address for nameGrace if
// one could ask for it; a storm of brief connections, named by their
// addresses, holds nothing; at most maxHeld names are held; and each is
// forgotten once its grace is over, a name given up again keeping its
// later grace.
func TestHeldNames(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := &state{byName: map[string]*Client{}, looks: map[string]*Client{}, held: map[string]heldName{}}
		leave := func(name, host string) {
			c := &Client{host: netip.MustParseAddr(host)}
			c.seat.name = name
			s.claim(c)
			s.unclaim(c)
		}
		other := &Client{host: netip.MustParseAddr("192.0.2.99")}

		for i := range 1000 {
			leave(fmt.Sprintf("198.51.%d.%d:%d", i/250, i%250, 40000+i), "198.51.0.1")
			leave(fmt.Sprintf("guest#%d", i+2), "198.51.0.1")
		}
		assert.Empty(t, s.held, "names nobody could ask for are not held")

		leave("alice", "192.0.2.1")
		assert.True(t, s.taken("alice", other), "held for its address")
		assert.True(t, s.taken("AIice", other), "and so is what looks like it")
		assert.False(t, s.taken("alice", &Client{host: netip.MustParseAddr("192.0.2.1")}), "but not for her")
		for i := range maxHeld + 10 {
			leave(fmt.Sprintf("n%d", i), "192.0.2.2")
		}
		assert.Equal(t, maxHeld, len(s.held), "at most maxHeld held")

		time.Sleep(nameGrace / 2)
		leave("alice", "192.0.2.1") // back and gone again: held anew, though the hub holds its most
		time.Sleep(nameGrace/2 + time.Second)
		leave("bob", "192.0.2.3")
		assert.True(t, s.taken("alice", other), "held from the second time she left")
		assert.Equal(t, 2, len(s.held), "alice's and bob's; the others' graces are over")

		time.Sleep(nameGrace + time.Second)
		leave("carol", "192.0.2.4")
		assert.False(t, s.taken("alice", other))
		assert.Equal(t, 1, len(s.held))
		assert.Equal(t, 1, len(s.expiry), "each name forgotten once")
	})
}
