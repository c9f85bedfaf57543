package irc

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/chatroom-go/chatroom"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line    string
		ok      bool
		command string
		params  []string
		tags    int
	}{
		{"PING abc", true, "PING", []string{"abc"}, 0},
		{"ping :", true, "PING", []string{""}, 0},
		{"WHOIS  coolNick", true, "WHOIS", []string{"coolNick"}, 0},
		{"PRIVMSG #a :hello :there", true, "PRIVMSG", []string{"#a", "hello :there"}, 0},
		{":nick!u@h PRIVMSG #a b", true, "PRIVMSG", []string{"#a", "b"}, 0},
		{"@a=b;+c :src NOTICE x :y z", true, "NOTICE", []string{"x", "y z"}, 6},
		{"USER u 0 * :", true, "USER", []string{"u", "0", "*", ""}, 0},
		{"CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", true, "CMD",
			[]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15 16"}, 0},
		{"", false, "", nil, 0},
		{"   ", false, "", nil, 0},
		{"@tags", false, "", nil, 4},
		{":source", false, "", nil, 0},
	}
	for _, tt := range tests {
		m, ok := parse([]byte(tt.line))
		assert.Equal(t, tt.ok, ok, "%q", tt.line)
		if ok {
			assert.Equal(t, tt.command, m.command, "%q", tt.line)
			assert.Equal(t, tt.params, m.params, "%q", tt.line)
			assert.Equal(t, tt.tags, m.tags, "%q", tt.line)
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"coolni*", "coolNick", true},
		{"COOLNI*", "coolnick", true},
		{"*an1", "#chan1", true},
		{"*an1", "#chan2", false},
		{"#c*n2", "#chan2", true},
		{"#ch*", "#chan1", true},
		{"#ch?n1", "#chan1", true},
		{"#ch?n1", "#chn1", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"", "a", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, mask(tt.pattern, tt.name), "mask(%q, %q)", tt.pattern, tt.name)
	}
}

// TestFormsAreShared: capabilities that change nothing in how messages
// are written do not make forms differ, so clients that differ only in
// them share each form, and the hub formats a message once for all of
// them.
func TestFormsAreShared(t *testing.T) {
	t.Parallel()
	f := &Face{}
	f.init()
	plain, plainOwn := formsFor(f, 0)
	names, namesOwn := formsFor(f, capMultiPrefix|capUserhostInNames)
	assert.True(t, plain == names)
	assert.True(t, plainOwn == namesOwn)
	echo, echoOwn := formsFor(f, capEchoMessage)
	assert.True(t, plain == echo, "echo-message changes only the own form")
	assert.False(t, plainOwn == echoOwn)
	timed, _ := formsFor(f, capServerTime)
	assert.False(t, plain == timed)
	other := &Face{}
	otherPlain, _ := formsFor(other, 0)
	assert.False(t, plain == otherPlain, "each face has forms of its own")
}

// TestFormat: every kind of message, as each form writes it.
func TestFormat(t *testing.T) {
	t.Parallel()
	f := &Face{ServerName: "irc.test"}
	f.init()
	at := time.Date(2026, 11, 28, 9, 30, 0, 5_000_000, time.FixedZone("CET", 3600))
	plain, own := formsFor(f, 0)
	tagged, taggedOwn := formsFor(f, capServerTime|capMessageTags|capEchoMessage)
	src := "alice!~al@10.0.0.1"
	tests := []struct {
		name             string
		m                chatroom.Message
		plain, own       string
		tagged, taggedOw string
	}{
		{"say", chatroom.Message{Kind: chatroom.KindSay, ID: 7, Time: at, Room: "games", From: "alice", User: "~al", Host: "10.0.0.1", Text: "hi there"},
			":" + src + " PRIVMSG #games :hi there", "",
			"@time=2026-11-28T08:30:00.005Z;msgid=7 :" + src + " PRIVMSG #games :hi there",
			"@time=2026-11-28T08:30:00.005Z;msgid=7 :" + src + " PRIVMSG #games :hi there"},
		{"notice", chatroom.Message{Kind: chatroom.KindSay, Time: at, Room: "games", From: "alice", User: "~al", Host: "10.0.0.1", Text: "n", Notice: true},
			":" + src + " NOTICE #games :n", "",
			"@time=2026-11-28T08:30:00.005Z :" + src + " NOTICE #games :n",
			"@time=2026-11-28T08:30:00.005Z :" + src + " NOTICE #games :n"},
		{"action", chatroom.Message{Kind: chatroom.KindAction, Room: "games", From: "alice", User: "~al", Host: "10.0.0.1", Text: "waves"},
			":" + src + " PRIVMSG #games :\x01ACTION waves\x01", "",
			":" + src + " PRIVMSG #games :\x01ACTION waves\x01", ":" + src + " PRIVMSG #games :\x01ACTION waves\x01"},
		{"whisper", chatroom.Message{Kind: chatroom.KindWhisper, From: "alice", User: "~al", Host: "10.0.0.1", To: "bob", Text: "psst"},
			":" + src + " PRIVMSG bob :psst", "", ":" + src + " PRIVMSG bob :psst", ":" + src + " PRIVMSG bob :psst"},
		{"join", chatroom.Message{Kind: chatroom.KindJoin, Room: "games", From: "alice", User: "~al", Host: "10.0.0.1"},
			":" + src + " JOIN #games", ":" + src + " JOIN #games", ":" + src + " JOIN #games", ":" + src + " JOIN #games"},
		{"part", chatroom.Message{Kind: chatroom.KindPart, Room: "games", From: "alice", User: "~al", Host: "10.0.0.1", Text: "bye now"},
			":" + src + " PART #games :bye now", ":" + src + " PART #games :bye now", ":" + src + " PART #games :bye now", ":" + src + " PART #games :bye now"},
		{"kick", chatroom.Message{Kind: chatroom.KindKick, Room: "games", From: "bob", By: "alice", User: "~al", Host: "10.0.0.1"},
			":" + src + " KICK #games bob :alice", "", ":" + src + " KICK #games bob :alice", ""},
		{"quit", chatroom.Message{Kind: chatroom.KindQuit, From: "alice", User: "~al", Host: "10.0.0.1", Reason: chatroom.ReasonIdle},
			":" + src + " QUIT :Idle timeout", "", ":" + src + " QUIT :Idle timeout", ""},
		{"nick", chatroom.Message{Kind: chatroom.KindNick, From: "alicia", Old: "alice", User: "~al", Host: "10.0.0.1"},
			":" + src + " NICK alicia", ":" + src + " NICK alicia", ":" + src + " NICK alicia", ":" + src + " NICK alicia"},
		{"topic cleared", chatroom.Message{Kind: chatroom.KindTopic, Room: "games", By: "alice", User: "~al", Host: "10.0.0.1"},
			":" + src + " TOPIC #games :", ":" + src + " TOPIC #games :", ":" + src + " TOPIC #games :", ":" + src + " TOPIC #games :"},
		{"mode", chatroom.Message{Kind: chatroom.KindMode, Room: "games", By: "alice", User: "~al", Host: "10.0.0.1", Text: "+o", From: "bob"},
			":" + src + " MODE #games +o bob", ":" + src + " MODE #games +o bob", ":" + src + " MODE #games +o bob", ":" + src + " MODE #games +o bob"},
		{"announce", chatroom.Message{Kind: chatroom.KindAnnounce, Text: "maintenance at noon"},
			":irc.test NOTICE * :maintenance at noon", "", ":irc.test NOTICE * :maintenance at noon", ""},
		{"bye", chatroom.Message{Kind: chatroom.KindBye, Reason: chatroom.ReasonShutdown},
			"ERROR :Closing link (Server shutting down)", "", "ERROR :Closing link (Server shutting down)", ""},
		{"from a peer, unknown user and host", chatroom.Message{Kind: chatroom.KindJoin, Room: "games", From: "zed"},
			":zed!zed@irc.test JOIN #games", ":zed!zed@irc.test JOIN #games", ":zed!zed@irc.test JOIN #games", ":zed!zed@irc.test JOIN #games"},
		{"a name an auth hook gave, with spaces", chatroom.Message{Kind: chatroom.KindWhisper, From: "Alice Smith", User: "a b", Host: "h", To: ":Bob Jones", Text: "x"},
			":Alice_Smith!a_b@h PRIVMSG _Bob_Jones :x", "", ":Alice_Smith!a_b@h PRIVMSG _Bob_Jones :x", ":Alice_Smith!a_b@h PRIVMSG _Bob_Jones :x"},
		{"an IPv6 host", chatroom.Message{Kind: chatroom.KindJoin, Room: "games", From: "v6", User: "~v6", Host: "::1"},
			":v6!~v6@0::1 JOIN #games", ":v6!~v6@0::1 JOIN #games", ":v6!~v6@0::1 JOIN #games", ":v6!~v6@0::1 JOIN #games"},
	}
	line := func(b []byte) string { return strings.TrimSuffix(string(b), "\r\n") }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.plain, line(plain.Format(&tt.m)))
			assert.Equal(t, tt.own, line(own.Format(&tt.m)))
			assert.Equal(t, tt.tagged, line(tagged.Format(&tt.m)))
			assert.Equal(t, tt.taggedOw, line(taggedOwn.Format(&tt.m)))
		})
	}
}
