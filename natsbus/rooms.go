package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/chatroom-go/chatroom"
)

// This file is the rooms' lines: the stream that orders and keeps them,
// and the receiver's side of each room the hub subscribed to. A room's
// lines are handed to the hub in the stream's order, each once: the
// stream's RePublish sends each line, as it is stored, on the room's live
// subject with its sequence (Nats-Sequence) and the sequence of the
// room's line before it (Nats-Last-Sequence), so that the receiver knows
// when it missed one, and then reads what it missed from the stream.

// command is the hub's Subscribe (with the lines it wants) or
// Unsubscribe.
type command struct {
	room      string
	n         int
	subscribe bool
}

// roomSub is a room the hub subscribed to, as the receiver keeps it.
type roomSub struct {
	token    string
	name     string // as the hub named it
	n        int    // the lines the hub wants when it subscribes
	sub      *nats.Subscription
	last     uint64 // the sequence of the last line handed to the hub, or read with the history
	fetching bool   // a read of the stream is running or waiting for its turn
	initial  bool   // ... and it answers a Subscribe
	pending  []liveLine
	queued   []command // the hub's commands for the room that came during a read
	dropped  int       // lines NATS dropped on its live subject (a slow consumer), as last seen
}

// liveLine is a message of the stream as it came on a room's live
// subject: one line, or several said one after the other.
type liveLine struct {
	seq, prev   uint64              // its sequence, and that of the room's message before it
	lines       []*chatroom.Message // nil for one that could not be read: its place in the sequence counts
	peer        string
	early       bool // received before the read of the stream that is running began
	unconfirmed bool // a read after it did not find it: one more may, then it is dropped
}

// maxPendingLines bounds the lines a room keeps while the stream is read:
// past it they are dropped, and the gap they leave is read again.
const maxPendingLines = 8192

// commands carries out the hub's Subscribe and Unsubscribe, in order.
func (r *receiver) commands() bool {
	b := r.b
	b.mu.Lock()
	cmds := b.cmds
	b.cmds = nil
	b.mu.Unlock()
	for _, c := range cmds {
		if !r.command(c) {
			return false
		}
	}
	return true
}

// command carries out c, or keeps it for after the room's read of the
// stream that is running.
func (r *receiver) command(c command) bool {
	b := r.b
	token, ok := roomToken(c.room)
	if !ok {
		if c.subscribe {
			return b.deliver(chatroom.BusMessage{Kind: chatroom.BusHistory, Room: c.room, Err: errors.New("natsbus: not a room's name")})
		}
		return true
	}
	rs := r.rooms[token]
	switch {
	case rs != nil && rs.fetching:
		rs.queued = append(rs.queued, c)
		return true
	case !c.subscribe:
		if rs != nil {
			rs.sub.Unsubscribe()
			delete(r.rooms, token)
		}
		return true
	case rs == nil:
		sub, err := b.nc.ChanSubscribe(b.subj.live+token, b.in)
		if err != nil {
			return b.deliver(chatroom.BusMessage{Kind: chatroom.BusHistory, Room: c.room,
				Err: fmt.Errorf("natsbus: subscribing to room %s: %w", c.room, err)})
		}
		rs = &roomSub{token: token, sub: sub}
		r.rooms[token] = rs
	}
	rs.name, rs.n = c.room, c.n
	r.fetch(rs, true)
	return true
}

// fetch has rs's lines read from the stream: with initial, every line it
// keeps (the answer to a Subscribe); otherwise those after rs.last. At
// most maxFetches reads run at once; the others wait their turn. The live
// subject is subscribed to first, and the read goes out on the same
// connection after it: a line stored after the read is received live.
func (r *receiver) fetch(rs *roomSub, initial bool) {
	rs.fetching, rs.initial = true, initial
	for i := range rs.pending {
		rs.pending[i].early = true
	}
	if r.inflight < maxFetches {
		r.start(rs)
	} else {
		r.queue = append(r.queue, rs)
	}
}

// fetchJob is one read of a room's lines from the stream.
type fetchJob struct {
	rs      *roomSub
	token   string
	after   uint64
	n       int
	initial bool
}

// fetchResult is what a read of the stream found: the room's lines after
// the job's, oldest first, and the highest sequence read.
type fetchResult struct {
	job   fetchJob
	lines []*storedLine
	max   uint64
	err   error
}

// storedLine is a message read from the stream: one line, or several.
type storedLine struct {
	seq   uint64
	lines []*chatroom.Message // nil for one that could not be read
	peer  string
}

// start starts a read of rs's lines on a goroutine of its own.
func (r *receiver) start(rs *roomSub) {
	b := r.b
	r.inflight++
	job := fetchJob{rs: rs, token: rs.token, after: rs.last, n: rs.n, initial: rs.initial}
	if job.initial {
		job.after = 0
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		res := b.readRoom(job)
		select {
		case b.results <- res:
		case <-b.done:
		}
	}()
}

// fetched takes the answer of a read: for a Subscribe, the hub gets the
// history, or the error; after a gap, the lines it missed. Then the lines
// received meanwhile are handled (those received before the read that it
// did not find are not the stream's: they are dropped), and the hub's
// commands that waited.
func (r *receiver) fetched(res fetchResult) bool {
	b := r.b
	r.inflight--
	if len(r.queue) > 0 {
		next := r.queue[0]
		r.queue = r.queue[1:]
		r.start(next)
	}
	rs, job := res.job.rs, res.job
	rs.fetching = false
	trust := false // the lines received meanwhile are checked for gaps
	switch {
	case res.err != nil && job.initial:
		rs.sub.Unsubscribe()
		delete(r.rooms, rs.token)
		b.log.Warn("natsbus: a room's lines could not be read", "room", rs.name, "err", res.err)
		rs.pending = nil
		if !b.deliver(chatroom.BusMessage{Kind: chatroom.BusHistory, Room: rs.name, Err: res.err}) {
			return false
		}
		return r.afterFetch(rs)
	case res.err != nil:
		b.log.Warn("natsbus: a room's missed lines could not be read; they are skipped", "room", rs.name, "err", res.err)
		trust = true // no new read for what is missed: that one just failed
	case job.initial:
		var history []*chatroom.Message
		for _, l := range res.lines {
			for i, line := range l.lines {
				line.ID = lineID(l.seq, i)
				history = append(history, line)
			}
		}
		if len(history) > job.n {
			history = history[len(history)-job.n:]
		}
		rs.last = max(rs.last, res.max)
		if !b.deliver(chatroom.BusMessage{Kind: chatroom.BusHistory, Room: rs.name, Lines: history}) {
			return false
		}
	default:
		for _, l := range res.lines {
			if l.seq <= rs.last {
				continue
			}
			rs.last = l.seq
			b.recovered.Add(uint64(len(l.lines)))
			if !b.deliverLines(l.seq, l.lines, l.peer) {
				return false
			}
		}
		rs.last = max(rs.last, res.max)
	}
	pending := rs.pending
	rs.pending = nil
	for i, l := range pending {
		if !rs.fetching && l.early && l.seq > res.max && res.err == nil {
			// Received before the read, and not found by it: the read
			// may have been answered by a replica that lags, so it is
			// read again, once; a line still not found is not the
			// stream's.
			if l.unconfirmed {
				b.refusals.note("a line its stream does not have")
				continue
			}
			pending[i].unconfirmed = true
			rs.pending = append(rs.pending, pending[i:]...)
			r.fetch(rs, false)
			break
		}
		if rs.fetching { // a gap: another read, which the rest waits for
			rs.pending = append(rs.pending, pending[i:]...)
			for j := range rs.pending {
				rs.pending[j].early = true
			}
			break
		}
		if !r.line(rs, l, trust) {
			return false
		}
	}
	return r.afterFetch(rs)
}

// afterFetch carries out the commands for rs that waited for its read.
func (r *receiver) afterFetch(rs *roomSub) bool {
	for len(rs.queued) > 0 && !rs.fetching {
		c := rs.queued[0]
		rs.queued = rs.queued[1:]
		if !r.command(c) {
			return false
		}
	}
	return true
}

// live deals with a line that came on a room's live subject.
func (r *receiver) live(m *nats.Msg) bool {
	b := r.b
	token := m.Subject[len(b.subj.live):]
	l, ok := b.liveLine(m, token)
	b.lines.Add(uint64(max(len(l.lines), 1)))
	if !ok {
		b.malformed.note(m.Subject)
		return true
	}
	rs := r.rooms[token]
	if rs == nil {
		return true // unsubscribed since
	}
	if rs.fetching {
		if len(rs.pending) >= maxPendingLines {
			b.lost.Add(1) // the next line shows the gap, which is read again
			return true
		}
		rs.pending = append(rs.pending, l)
		return true
	}
	return r.line(rs, l, false)
}

// line hands the hub l, a line of rs's, if it is the next: one had
// already is dropped, and one after a gap waits while the gap is read
// from the stream (unless trust, after a read that failed).
func (r *receiver) line(rs *roomSub, l liveLine, trust bool) bool {
	if l.seq <= rs.last {
		return true
	}
	if !trust && l.prev > rs.last {
		rs.pending = append(rs.pending, l)
		r.fetch(rs, false)
		return true
	}
	rs.last = l.seq
	return r.b.deliverLines(l.seq, l.lines, l.peer)
}

// deliverLines hands the hub lines, the stream's message seq, in order,
// each with its ID. It reports false once the hub is closing.
func (b *Bus) deliverLines(seq uint64, lines []*chatroom.Message, peer string) bool {
	for i, line := range lines {
		line.ID = lineID(seq, i)
		if !b.deliver(chatroom.BusMessage{Kind: chatroom.BusLine, Peer: peer, Room: line.Room, Name: line.From,
			Line: line, Time: line.Time}) {
			return false
		}
	}
	return true
}

// liveLine reads a line re-published on the live subject of the room
// whose token is token. It reports false for a message that is not one:
// its headers are not the stream's. A line whose headers are right but
// whose body cannot be read keeps its place in the sequence, without a
// line.
func (b *Bus) liveLine(m *nats.Msg, token string) (liveLine, bool) {
	h := m.Header
	if h.Get(jetstream.StreamHeader) != b.subj.stream || h.Get(jetstream.SubjectHeader) != b.subj.line+token {
		return liveLine{}, false
	}
	seq, err1 := strconv.ParseUint(h.Get(jetstream.SequenceHeader), 10, 64)
	prev, err2 := strconv.ParseUint(h.Get("Nats-Last-Sequence"), 10, 64)
	if err1 != nil || err2 != nil || seq == 0 || prev >= seq {
		return liveLine{}, false
	}
	l := liveLine{seq: seq, prev: prev}
	l.lines, l.peer = b.readLines(m.Data, token)
	if l.lines == nil {
		b.malformed.note(m.Subject)
	}
	return l, true
}

// readLines decodes the lines of one message of the stream, said in the
// room whose token is token, or returns nil.
func (b *Bus) readLines(data []byte, token string) ([]*chatroom.Message, string) {
	e, err := decode(data, b.cfg.maxLine)
	if err != nil || e.kind != kindLine && e.kind != kindLines {
		return nil, ""
	}
	if t, ok := roomToken(e.msg.Room); !ok || t != token {
		return nil, ""
	}
	if e.kind == kindLine {
		return []*chatroom.Message{e.msg.Line}, e.from
	}
	return e.lines, e.from
}

// readRoom reads a room's lines from the stream: every line it keeps of
// the room after job.after, in one batched direct get (more if the
// stream holds more than the batch), after making sure the stream keeps
// job.n lines per room for a Subscribe.
func (b *Bus) readRoom(job fetchJob) fetchResult {
	ctx, cancel := context.WithTimeout(b.ctx, fetchTimeout)
	defer cancel()
	res := fetchResult{job: job}
	if job.initial {
		if err := b.keepPerSubject(ctx, job.n); err != nil {
			b.log.Warn("natsbus: the stream keeps fewer lines per room than the hub wants", "want", job.n, "err", err)
		}
	}
	batch := max(int(b.perSubject.Load()), job.n)
	msgs, err := b.directGet(ctx, b.subj.line+job.token, job.after+1, batch)
	if err != nil {
		res.err = fmt.Errorf("natsbus: reading room lines: %w", err)
		return res
	}
	for _, m := range msgs {
		seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		res.max = max(res.max, seq)
		lines, peer := b.readLines(m.Data, job.token)
		if lines == nil {
			b.malformed.note(m.Subject)
		}
		res.lines = append(res.lines, &storedLine{seq: seq, lines: lines, peer: peer})
	}
	return res
}

// directGetRequest is a batched direct get (nats-server 2.11 and later).
type directGetRequest struct {
	Seq        uint64 `json:"seq"`
	NextBySubj string `json:"next_by_subj"`
	Batch      int    `json:"batch"`
}

// directGet returns the stream's messages on subject from the sequence
// from on: batch of them in the first request, then, while the server
// says more are pending (the stream keeps more per subject than this
// process knew, or the batch passed the server's byte limit), as many as
// it says, at most 8 requests in all.
func (b *Bus) directGet(ctx context.Context, subject string, from uint64, batch int) ([]*nats.Msg, error) {
	inbox := b.nc.NewInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	var out []*nats.Msg
	for round := 0; ; round++ {
		if round == 8 {
			return nil, errors.New("the room's lines kept coming faster than they could be read")
		}
		req, _ := json.Marshal(directGetRequest{Seq: from, NextBySubj: subject, Batch: batch})
		if err := b.nc.PublishRequest(b.subj.direct, inbox, req); err != nil {
			return nil, err
		}
		more := false
	read:
		for {
			m, err := sub.NextMsgWithContext(ctx)
			if err != nil {
				return nil, err
			}
			switch status := m.Header.Get("Status"); status {
			case "":
				seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
				if err != nil || seq < from || m.Header.Get(jetstream.StreamHeader) != b.subj.stream ||
					m.Header.Get(jetstream.SubjectHeader) != subject {
					return nil, errors.New("a direct get answered with another stream's message")
				}
				m.Subject = subject
				out = append(out, m)
				from = seq + 1
			case "204": // end of the batch
				np, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				more, batch = np > 0, int(min(np, 1<<20))
				break read
			case "404": // nothing (more) on the subject
				return out, nil
			case "503":
				return nil, fmt.Errorf("no responders: the stream %s cannot be reached, or does not allow direct gets", b.subj.stream)
			default:
				return nil, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
			}
		}
		if !more {
			return out, nil
		}
	}
}

// streamConfig is the lines' stream as a bus wants it, keeping perSubject
// lines per room.
func (b *Bus) streamConfig(perSubject int64) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              b.subj.stream,
		Description:       "the last lines of each room of chat hub " + b.ns,
		Subjects:          []string{b.subj.line + "*"},
		MaxMsgsPerSubject: perSubject,
		MaxBytes:          b.cfg.streamBytes,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: b.subj.line + "*", Destination: b.subj.live + "{{wildcard(1)}}"},
	}
}

// openStream makes sure the lines' stream exists, with the subjects, the
// direct gets and the RePublish the bus needs: it creates it (on file
// storage, or in memory if the server has no file storage), or updates a
// stream that lacks them. A stream made by the operator with all of them
// is left as it is, so that the processes need no permission to create
// or update it; one that keeps every line of each room is refused (a
// room's last lines are read as all the lines the stream keeps of it).
func (b *Bus) openStream(ctx context.Context) error {
	for range 2 {
		s, err := b.js.Stream(ctx, b.subj.stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			cfg := b.streamConfig(1) // the first Subscribe says how many
			_, err = b.js.CreateStream(ctx, cfg)
			if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				cfg.Storage = jetstream.MemoryStorage
				if _, err2 := b.js.CreateStream(ctx, cfg); err2 == nil {
					err = nil
				}
			}
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				continue // made by another process meanwhile: read it
			}
			if err != nil {
				return fmt.Errorf("natsbus: creating the stream %s: %w", b.subj.stream, err)
			}
			b.perSubject.Store(1)
			return nil
		}
		if err != nil {
			return fmt.Errorf("natsbus: the stream %s: %w", b.subj.stream, err)
		}
		cfg := s.CachedInfo().Config
		if cfg.MaxMsgsPerSubject <= 0 {
			return fmt.Errorf("natsbus: the stream %s keeps every line of a room (MaxMsgsPerSubject %d): "+
				"give it the hubs' WithHistory + 1 or more", b.subj.stream, cfg.MaxMsgsPerSubject)
		}
		want := b.streamConfig(cfg.MaxMsgsPerSubject)
		changed := false
		if !slices.Contains(cfg.Subjects, want.Subjects[0]) {
			cfg.Subjects, changed = append(cfg.Subjects, want.Subjects[0]), true
		}
		if !cfg.AllowDirect {
			cfg.AllowDirect, changed = true, true
		}
		if cfg.RePublish == nil || cfg.RePublish.Source != want.RePublish.Source || cfg.RePublish.HeadersOnly ||
			cfg.RePublish.Destination != want.RePublish.Destination && cfg.RePublish.Destination != b.subj.live+"$1" {
			cfg.RePublish, changed = want.RePublish, true
		}
		if changed {
			if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("natsbus: updating the stream %s: %w", b.subj.stream, err)
			}
		}
		b.perSubject.Store(cfg.MaxMsgsPerSubject)
		return nil
	}
	return fmt.Errorf("natsbus: the stream %s could not be created or read", b.subj.stream)
}

// keepPerSubject makes sure the stream keeps at least n lines per room:
// the most any process asked for.
func (b *Bus) keepPerSubject(ctx context.Context, n int) error {
	if b.perSubject.Load() >= int64(n) {
		return nil
	}
	b.streamMu.Lock()
	defer b.streamMu.Unlock()
	if b.perSubject.Load() >= int64(n) {
		return nil
	}
	s, err := b.js.Stream(ctx, b.subj.stream)
	if err != nil {
		return err
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxMsgsPerSubject >= int64(n) {
		b.perSubject.Store(cfg.MaxMsgsPerSubject)
		return nil
	}
	cfg.MaxMsgsPerSubject = int64(n)
	updated, err := b.js.UpdateStream(ctx, cfg)
	if err != nil {
		return err
	}
	b.perSubject.Store(updated.CachedInfo().Config.MaxMsgsPerSubject)
	return nil
}
