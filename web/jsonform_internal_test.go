package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/chatroom-go/chatroom"
)

// TestJSONFormEveryKind: each kind of message as the JSON form writes it,
// byte for byte, in the form for others and the own form; every line is
// valid JSON.
func TestJSONFormEveryKind(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 21, 9, 10, 0, time.FixedZone("CET", 3600))
	const ts = `"time":"2026-12-02T21:09:10+01:00"`
	members := []chatroom.Member{{Name: "ann", Operator: true}, {Name: "bob", Voiced: true}, {Name: "cid"}}
	tests := []struct {
		name      string
		m         chatroom.Message
		want, own string // own: "" for the same as want
	}{
		{"say", chatroom.Message{Kind: chatroom.KindSay, ID: 17, Time: at, Room: "lobby", From: "ann", Text: "hi"},
			`{"type":"say","id":17,` + ts + `,"room":"lobby","from":"ann","text":"hi"}`,
			`{"type":"say","id":17,` + ts + `,"room":"lobby","from":"ann","text":"hi","own":true}`},
		{"notice", chatroom.Message{Kind: chatroom.KindSay, ID: 18, Time: at, Room: "lobby", From: "ann", Text: "hi", Notice: true},
			`{"type":"say","id":18,` + ts + `,"room":"lobby","from":"ann","text":"hi","notice":true}`,
			`{"type":"say","id":18,` + ts + `,"room":"lobby","from":"ann","text":"hi","notice":true,"own":true}`},
		{"action", chatroom.Message{Kind: chatroom.KindAction, ID: 19, Time: at, Room: "lobby", From: "ann", Text: "waves"},
			`{"type":"me","id":19,` + ts + `,"room":"lobby","from":"ann","text":"waves"}`,
			`{"type":"me","id":19,` + ts + `,"room":"lobby","from":"ann","text":"waves","own":true}`},
		{"whisper", chatroom.Message{Kind: chatroom.KindWhisper, Time: at, From: "ann", To: "bob", Text: "psst"},
			`{"type":"whisper",` + ts + `,"from":"ann","to":"bob","text":"psst"}`,
			`{"type":"whisper",` + ts + `,"from":"ann","to":"bob","text":"psst","own":true}`},
		{"join", chatroom.Message{Kind: chatroom.KindJoin, ID: 19, Time: at, Room: "games", From: "cid", Count: 3, Members: members, Topic: "chess"},
			`{"type":"join",` + ts + `,"room":"games","from":"cid"}`,
			`{"type":"join",` + ts + `,"room":"games","from":"cid","last":19,"count":3,"topic":"chess","own":true}` + "\n" +
				`{"type":"members","room":"games","count":3,"members":[{"name":"ann","op":true},{"name":"bob","voice":true},{"name":"cid"}]}`},
		{"welcome", chatroom.Message{Kind: chatroom.KindWelcome, ID: 19, Time: at, Room: "lobby", From: "cid", Count: 3, Members: members},
			`{"type":"welcome",` + ts + `,"name":"cid"}` + "\n" +
				`{"type":"join",` + ts + `,"room":"lobby","from":"cid","last":19,"count":3,"own":true}` + "\n" +
				`{"type":"members","room":"lobby","count":3,"members":[{"name":"ann","op":true},{"name":"bob","voice":true},{"name":"cid"}]}`, ""},
		{"part", chatroom.Message{Kind: chatroom.KindPart, Time: at, Room: "games", From: "bob", Text: "bye all"},
			`{"type":"leave",` + ts + `,"room":"games","from":"bob","reason":"part","text":"bye all"}`,
			`{"type":"leave",` + ts + `,"room":"games","from":"bob","reason":"part","text":"bye all","own":true}`},
		{"kick", chatroom.Message{Kind: chatroom.KindKick, Time: at, Room: "games", From: "bob", By: "ann", Text: "spam"},
			`{"type":"leave",` + ts + `,"room":"games","from":"bob","reason":"kicked","by":"ann","text":"spam"}`, ""},
		{"quit", chatroom.Message{Kind: chatroom.KindQuit, Time: at, From: "bob", Reason: chatroom.ReasonSlow, Rooms: []string{"games", "lobby"}},
			`{"type":"leave",` + ts + `,"rooms":["games","lobby"],"from":"bob","reason":"too slow","quit":true}`, ""},
		{"nick", chatroom.Message{Kind: chatroom.KindNick, Time: at, From: "rob", Old: "bob", Rooms: []string{"lobby"}},
			`{"type":"nick",` + ts + `,"from":"rob","old":"bob","rooms":["lobby"]}`,
			`{"type":"nick",` + ts + `,"from":"rob","old":"bob","rooms":["lobby"],"own":true}`},
		{"topic", chatroom.Message{Kind: chatroom.KindTopic, Time: at, Room: "games", By: "ann", Text: "chess"},
			`{"type":"topic",` + ts + `,"room":"games","by":"ann","text":"chess"}`,
			`{"type":"topic",` + ts + `,"room":"games","by":"ann","text":"chess","own":true}`},
		{"mode", chatroom.Message{Kind: chatroom.KindMode, Time: at, Room: "games", By: "ann", Text: "+o", From: "bob"},
			`{"type":"mode",` + ts + `,"room":"games","by":"ann","mode":"+o","name":"bob"}`,
			`{"type":"mode",` + ts + `,"room":"games","by":"ann","mode":"+o","name":"bob","own":true}`},
		{"announce", chatroom.Message{Kind: chatroom.KindAnnounce, Time: at, Text: "maintenance"},
			`{"type":"notice",` + ts + `,"text":"maintenance"}`, ""},
		{"summary", chatroom.Message{Kind: chatroom.KindSummary, Time: at, Room: "lobby", Joined: 532, Left: 530},
			`{"type":"summary",` + ts + `,"room":"lobby","joined":532,"left":530}`, ""},
		{"gap", chatroom.Message{Kind: chatroom.KindGap, Time: at, Room: "lobby", Since: 17},
			`{"type":"gap",` + ts + `,"room":"lobby","since":17}`, ""},
		{"error", chatroom.Message{Kind: chatroom.KindError, Time: at, Room: "lobby", Text: "your line was not delivered"},
			`{"type":"error",` + ts + `,"room":"lobby","text":"your line was not delivered"}`, ""},
		{"bye", chatroom.Message{Kind: chatroom.KindBye, Time: at, Reason: chatroom.ReasonShutdown},
			`{"type":"bye",` + ts + `,"reason":"shutdown"}`, ""},
		{"kicked", chatroom.Message{Kind: chatroom.KindBye, Time: at, Reason: chatroom.ReasonKicked, Text: "spam"},
			`{"type":"bye",` + ts + `,"reason":"kicked","text":"spam"}`, ""},
		{"refused", chatroom.Message{Kind: chatroom.KindBye, Time: at, Reason: chatroom.ReasonRefused, Text: "too many connections from your address (max 16)"},
			`{"type":"bye",` + ts + `,"reason":"refused","text":"too many connections from your address (max 16)"}`, ""},
		{"escapes", chatroom.Message{Kind: chatroom.KindSay, ID: 1, Time: at, Room: "r", From: "a", Text: "\"q\" \\ \x01\t\n<é😀>\xff"},
			`{"type":"say","id":1,` + ts + `,"room":"r","from":"a","text":"\"q\" \\ \u0001\t\n<é😀>\ufffd"}`,
			`{"type":"say","id":1,` + ts + `,"room":"r","from":"a","text":"\"q\" \\ \u0001\t\n<é😀>\ufffd","own":true}`},
	}
	for _, tt := range tests {
		own := tt.own
		if own == "" {
			own = tt.want
		}
		for _, c := range []struct {
			form jsonForm
			want string
		}{{jsonForm{}, tt.want}, {jsonForm{own: true}, own}} {
			got := string(c.form.Format(&tt.m))
			assert.Equal(t, c.want+"\n", got, "%s, own %v", tt.name, c.form.own)
			for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				assert.True(t, json.Valid([]byte(line)), "%s: %s", tt.name, line)
			}
		}
	}
}

// FuzzQuote: the hand-written quoting is valid JSON that encoding/json
// reads back as the text it was given, each invalid byte as U+FFFD.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "hi", `"\`, "\x00\x1f\x7f", "é😀\u2028", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := quote(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("quote(%q) = %s: %v", s, b, err)
		}
		var want strings.Builder
		for _, r := range s { // an invalid byte ranges as U+FFFD
			want.WriteRune(r)
		}
		if back != want.String() {
			t.Fatalf("quote(%q) reads back as %q", s, back)
		}
	})
}

// BenchmarkJSONFormSay: writing a chat line, which the hub does once per
// form, for every receiver of that form.
func BenchmarkJSONFormSay(b *testing.B) {
	m := &chatroom.Message{Kind: chatroom.KindSay, ID: 1764709740000017, Time: time.Now(), Room: "lobby", From: "ada",
		Text: "a chat line of about sixty bytes, as people type them in a room"}
	b.ReportAllocs()
	for b.Loop() {
		jsonForm{}.Format(m)
	}
}
