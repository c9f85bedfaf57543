package irc_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom/irc"
)

// One room, two faces: what an IRC client and a text-protocol (nc) client
// in the same room see of each other.

func TestIRCAndTextInOneRoom(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	bob := textClient(t, s, "bob", 1) // in the lobby, where the text protocol lands
	alice := ircClient(t, s, "alice")

	// alice joins: bob is told; alice gets the JOIN, and who is there.
	alice.send("JOIN #lobby")
	alice.expect(":" + source("alice", true) + " JOIN #lobby")
	alice.expect(numeric("353", "alice", "= #lobby :alice bob"))
	alice.expect(numeric("366", "alice", "#lobby :End of /NAMES list"))
	bob.expect(ts + " * alice joined")

	// Lines both ways.
	alice.send("PRIVMSG #lobby :hello from IRC")
	bob.expect(ts + " alice say: hello from IRC")
	bob.send("hello from nc")
	alice.expect(":" + source("bob", false) + " PRIVMSG #lobby :hello from nc")
	alice.send("NOTICE #lobby :a notice")
	bob.expect(ts + " alice say: a notice")

	// /me and CTCP ACTION, both ways.
	alice.send("PRIVMSG #lobby :\x01ACTION waves\x01")
	bob.expect(ts + " * alice waves")
	bob.send("/me waves back")
	alice.expect(":" + source("bob", false) + " PRIVMSG #lobby :\x01ACTION waves back\x01")

	// Whispers, both ways; a private ACTION arrives as a line.
	alice.send("PRIVMSG bob :psst")
	bob.expect(ts + " alice whispers: psst")
	bob.send("/msg alice what?")
	alice.expect(":" + source("bob", false) + " PRIVMSG alice :what?")
	alice.send("PRIVMSG bob :\x01ACTION nods\x01")
	bob.expect(ts + " alice whispers: * alice nods")
	alice.send("NOTICE bob :noted")
	bob.expect(ts + " alice whispers: noted")

	// Renames, both ways.
	alice.send("NICK alicia")
	alice.expect(":" + source("alice", true) + " NICK alicia")
	bob.expect(ts + " * alice is now alicia")
	bob.send("/nick robert")
	bob.expect("* you are now robert")
	alice.expect(":" + source("bob", false) + " NICK robert")
	alice.send("PRIVMSG robert :hi robert")
	bob.expect(ts + " alicia whispers: hi robert")

	// The text client moves to another room: a PART for alice; it comes
	// back: a JOIN.
	bob.send("/join games")
	bob.expect("* you are in games, 1 online")
	alice.expect(":" + source("robert", false) + " PART #lobby")
	bob.send("/join lobby")
	bob.expect("* you are in lobby, 2 online")
	alice.expect(":" + source("robert", false) + " JOIN #lobby")

	// alice leaves, with words the text protocol does not show; then
	// joins again and quits.
	alice.send("PART #lobby :later")
	alice.expect(":alicia!~alice@127.0.0.1 PART #lobby :later")
	bob.expect(ts + " * alicia left")
	alice.send("JOIN #lobby")
	alice.sync()
	bob.expect(ts + " * alicia joined")
	alice.send("QUIT :bye")
	bob.expect(ts + " * alicia left")
	alice.expect("ERROR :Closing link (Quit: bye)")
	alice.ExpectClosed()
}

// TestTextClientQuitsAndIsKicked: what IRC sees of a text client that
// leaves the hub, and one an IRC operator of the room kicks (the text
// protocol's client is always in one room, so it is disconnected).
func TestTextClientQuitsAndIsKicked(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	bob := textClient(t, s, "bob", 1)
	carol := textClient(t, s, "carol", 2)
	bob.WaitUntil(func(l string) bool { return strings.HasSuffix(l, " is now carol") })

	// alice opens #ops herself, so she is its operator; the text
	// clients come to it.
	alice := ircClient(t, s, "alice")
	alice.send("JOIN #ops")
	alice.sync()
	bob.send("/join ops")
	bob.expect("* you are in ops, 2 online")
	carol.expect(ts + " * bob left")
	carol.send("/join ops")
	carol.expect("* you are in ops, 3 online")
	bob.expect(ts + " * carol joined")
	assert.Equal(t, []string{
		":" + source("bob", false) + " JOIN #ops",
		":" + source("carol", false) + " JOIN #ops",
	}, alice.sync())

	carol.send("exit")
	carol.expect("* bye")
	alice.expect(":" + source("carol", false) + " QUIT :Quit")
	bob.expect(ts + " * carol left")
	alice.send("KICK #ops bob :enough")
	bob.expect("* kicked: enough")
	alice.expect(":" + source("bob", false) + " QUIT :Kicked: enough")
}

func TestChannelsBetweenIRCClients(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice := ircClient(t, s, "alice")
	bob := ircClient(t, s, "bob")

	// Several channels at once; an invalid one is refused alone. The
	// client that opens a channel is its operator.
	alice.send("JOIN #one,#two,inv@lid,#b@d")
	assert.Equal(t, []string{
		":" + source("alice", true) + " JOIN #one",
		numeric("353", "alice", "= #one :@alice"),
		numeric("366", "alice", "#one :End of /NAMES list"),
		":" + source("alice", true) + " JOIN #two",
		numeric("353", "alice", "= #two :@alice"),
		numeric("366", "alice", "#two :End of /NAMES list"),
		numeric("403", "alice", "inv@lid :No such channel"),
		numeric("403", "alice", "#b@d :No such channel"),
	}, alice.sync())
	alice.send("JOIN #one")
	alice.expectNothing() // already there

	bob.send("JOIN #ONE")
	bob.expect(":" + source("bob", true) + " JOIN #one")
	bob.expect(numeric("353", "bob", "= #one :@alice bob"))
	bob.expect(numeric("366", "bob", "#one :End of /NAMES list"))
	alice.expect(":" + source("bob", true) + " JOIN #one")

	// Topics: anyone may set one until the operator locks it.
	bob.send("TOPIC #one :bob's topic")
	bob.expect(":" + source("bob", true) + " TOPIC #one :bob's topic")
	alice.expect(":" + source("bob", true) + " TOPIC #one :bob's topic")
	alice.send("MODE #one +t")
	alice.expect(":" + source("alice", true) + " MODE #one +t")
	bob.expect(":" + source("alice", true) + " MODE #one +t")
	bob.send("TOPIC #one :again")
	bob.expect(numeric("482", "bob", "#one :You're not channel operator"))
	bob.send("TOPIC #one")
	bob.expect(numeric("332", "bob", "#one :bob's topic"))
	assert.Regexp(t, `^:irc\.test 333 bob #one bob [0-9]+$`, bob.Line())
	bob.send("TOPIC #two", "TOPIC #none")
	bob.expect(numeric("331", "bob", "#two :No topic is set"))
	bob.expect(numeric("403", "bob", "#none :No such channel"))
	bob.send("MODE #one")
	bob.expect(numeric("324", "bob", "#one +t"))
	assert.Regexp(t, `^:irc\.test 329 bob #one [0-9]+$`, bob.Line())

	// Voice and operator status; NAMES with and without multi-prefix.
	alice.send("MODE #one +v bob", "MODE #one +o bob")
	for _, c := range []*conn{alice, bob} {
		c.expect(":" + source("alice", true) + " MODE #one +v bob")
		c.expect(":" + source("alice", true) + " MODE #one +o bob")
	}
	bob.send("NAMES #one,#two")
	assert.Equal(t, []string{
		numeric("353", "bob", "= #one :@alice @bob"),
		numeric("353", "bob", "= #two :@alice"),
		numeric("366", "bob", "#one,#two :End of /NAMES list"),
	}, bob.sync())
	bob.send("CAP REQ :multi-prefix userhost-in-names", "NAMES #one")
	assert.Equal(t, []string{
		":irc.test CAP bob ACK :multi-prefix userhost-in-names",
		numeric("353", "bob", "= #one :@alice!~alice@127.0.0.1 @+bob!~bob@127.0.0.1"),
		numeric("366", "bob", "#one :End of /NAMES list"),
	}, bob.sync())

	// A secret channel: listed to its members alone, and NAMES says so.
	alice.send("MODE #two +s", "NAMES #two")
	alice.expect(":" + source("alice", true) + " MODE #two +s")
	alice.expect(numeric("353", "alice", "@ #two :@alice"))
	alice.expect(numeric("366", "alice", "#two :End of /NAMES list"))
	bob.send("NAMES #two", "LIST")
	assert.Equal(t, []string{
		numeric("366", "bob", "#two :End of /NAMES list"),
		numeric("321", "bob", "Channel :Users  Name"),
		numeric("322", "bob", "#one 2 :bob's topic"),
		numeric("323", "bob", ":End of /LIST"),
	}, bob.sync(), "neither #two nor the empty lobby is listed")

	// Kicks: by an operator, several at once, with the kicker's name as
	// the default reason; not by others.
	carol := ircClient(t, s, "carol")
	carol.send("JOIN #one")
	carol.sync()
	alice.expect(":" + source("carol", true) + " JOIN #one")
	bob.expect(":" + source("carol", true) + " JOIN #one")
	carol.send("KICK #one alice")
	carol.expect(numeric("482", "carol", "#one :You're not channel operator"))
	bob.send("KICK #one carol,nobody")
	for _, c := range []*conn{alice, bob, carol} {
		c.expect(":" + source("bob", true) + " KICK #one carol :bob")
	}
	bob.expect(numeric("441", "bob", "nobody #one :They aren't on that channel"))
	carol.send("PRIVMSG #one :still here?")
	carol.expect(numeric("404", "carol", "#one :Cannot send to channel"))
	carol.send("KICK #one alice", "PART #one", "PART #nowhere")
	carol.expect(numeric("442", "carol", "#one :You're not on that channel"))
	carol.expect(numeric("442", "carol", "#one :You're not on that channel"))
	carol.expect(numeric("403", "carol", "#nowhere :No such channel"))

	// The last one out closes a channel.
	alice.send("PART #two")
	alice.expect(":" + source("alice", true) + " PART #two")
	alice.send("TOPIC #two")
	alice.expect(numeric("403", "alice", "#two :No such channel"))
}

func TestMessagesAndErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice := ircClient(t, s, "alice")
	bob := ircClient(t, s, "bob")
	alice.send("JOIN #one")
	alice.sync()
	bob.send("JOIN #one")
	bob.sync()
	alice.expect(":" + source("bob", true) + " JOIN #one")

	// Several targets; a channel one is not in; nobody by that name.
	alice.send("PRIVMSG #one,bob :to both", "PRIVMSG #nowhere :x", "PRIVMSG nobody :x", "PRIVMSG #one :", "PRIVMSG")
	assert.Equal(t, []string{
		numeric("403", "alice", "#nowhere :No such channel"),
		numeric("401", "alice", "nobody :No such nick/channel"),
		numeric("412", "alice", ":No text to send"),
		numeric("411", "alice", ":No recipient given (PRIVMSG)"),
	}, alice.sync())
	assert.Equal(t, []string{
		":" + source("alice", true) + " PRIVMSG #one :to both",
		":" + source("alice", true) + " PRIVMSG bob :to both",
	}, bob.sync())

	// A NOTICE is never answered with an error.
	alice.send("NOTICE #nowhere :x", "NOTICE nobody :x", "NOTICE #one :")
	alice.expectNothing()

	// Away: a private line to bob says so; WHOIS too.
	bob.send("AWAY :out to lunch")
	bob.expect(numeric("306", "bob", ":You have been marked as being away"))
	alice.send("PRIVMSG bob :there?")
	alice.expect(numeric("301", "alice", "bob :out to lunch"))
	bob.expect(":" + source("alice", true) + " PRIVMSG bob :there?")
	alice.send("WHOIS bob")
	assert.Equal(t, []string{
		numeric("311", "alice", "bob ~bob 127.0.0.1 * :Real bob"),
		numeric("319", "alice", "bob :#one"),
		numeric("312", "alice", "bob irc.test irc.test"),
		numeric("301", "alice", "bob :out to lunch"),
		numeric("318", "alice", "bob :End of /WHOIS list"),
	}, alice.sync())
	alice.send("USERHOST bob alice nobody")
	alice.expect(numeric("302", "alice", ":bob=-~bob@127.0.0.1 alice=+~alice@127.0.0.1"))
	alice.send("ISON bob nobody alice")
	alice.expect(numeric("303", "alice", ":bob alice"))
	bob.send("AWAY")
	bob.expect(numeric("305", "bob", ":You are no longer marked as being away"))
	alice.send("WHOIS nobody")
	alice.expect(numeric("401", "alice", "nobody :No such nick/channel"))
	alice.expect(numeric("318", "alice", "nobody :End of /WHOIS list"))
}

func TestWho(t *testing.T) {
	t.Parallel()
	s := startServer(t, &irc.Face{ServerName: serverName, Operators: map[string]string{"root": "hunter2"}})
	alice := ircClient(t, s, "alice")
	bob := ircClient(t, s, "bob")
	textClient(t, s, "carol", 1)
	alice.send("JOIN #one")
	alice.sync()
	bob.send("JOIN #one")
	bob.sync()
	alice.expect(":" + source("bob", true) + " JOIN #one")

	bob.send("OPER root wrong", "OPER root hunter2")
	assert.Equal(t, []string{
		numeric("464", "bob", ":Password incorrect"),
		numeric("381", "bob", ":You are now an IRC operator"),
		":" + source("bob", true) + " MODE bob :+o",
	}, bob.sync())
	bob.send("AWAY :gone")
	bob.sync()

	alice.send("WHO #one")
	assert.Equal(t, []string{
		numeric("352", "alice", "#one ~alice 127.0.0.1 irc.test alice H@ :0 Real alice"),
		numeric("352", "alice", "#one ~bob 127.0.0.1 irc.test bob G* :0 Real bob"),
		numeric("315", "alice", "#one :End of WHO list"),
	}, alice.sync())
	alice.send("WHO *")
	assert.Equal(t, []string{
		numeric("352", "alice", "* ~alice 127.0.0.1 irc.test alice H :0 Real alice"),
		numeric("352", "alice", "* ~bob 127.0.0.1 irc.test bob G* :0 Real bob"),
		numeric("352", "alice", "* text 127.0.0.1 irc.test carol H :0 "),
		numeric("315", "alice", "* :End of WHO list"),
	}, alice.sync())
	alice.send("WHO BOB %tcuihsnfdlaor,42", "WHO b* %n", "WHO nobody")
	assert.Equal(t, []string{
		numeric("354", "alice", "42 * ~bob 127.0.0.1 127.0.0.1 irc.test bob G* 0 0 0 n/a :Real bob"),
		numeric("315", "alice", "BOB :End of WHO list"),
		numeric("354", "alice", "bob"),
		numeric("315", "alice", "b* :End of WHO list"),
		numeric("315", "alice", "nobody :End of WHO list"),
	}, alice.sync())

	// An invisible client is left out of masks, but not of its channels
	// or its nick.
	bob.send("MODE bob +i", "MODE bob", "MODE alice +i")
	assert.Equal(t, []string{
		":" + source("bob", true) + " MODE bob :+i",
		numeric("221", "bob", "+io"),
		numeric("502", "bob", ":Can't change mode for other users"),
	}, bob.sync())
	alice.send("WHO b*", "WHO bob %n")
	assert.Equal(t, []string{
		numeric("352", "alice", "* ~bob 127.0.0.1 irc.test bob G* :0 Real bob"),
		numeric("315", "alice", "b* :End of WHO list"),
		numeric("354", "alice", "bob"),
		numeric("315", "alice", "bob :End of WHO list"),
	}, alice.sync(), "alice shares #one with bob")
	outsider := ircClient(t, s, "dave")
	outsider.send("WHO b*", "WHO bob %n", "LUSERS")
	lines := outsider.sync()
	require.Len(t, lines, 8)
	assert.Equal(t, []string{
		numeric("315", "dave", "b* :End of WHO list"),
		numeric("354", "dave", "bob"),
		numeric("315", "dave", "bob :End of WHO list"),
		numeric("251", "dave", ":There are 3 users and 1 invisible on 1 servers"),
	}, lines[:4])
	assert.True(t, strings.HasPrefix(lines[7], numeric("266", "dave", "4 4 ")), lines[7])
}
