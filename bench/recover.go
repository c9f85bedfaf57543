package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/chatroom-go/chatroom"
)

// recoverSpec describes a run of the recover workload: rounds times, a
// client of the JSON protocol misses lines lines and reconnects to get
// them.
type recoverSpec struct {
	lines, rounds int
}

// recoverResult is what one run of the recover workload measured.
type recoverResult struct {
	took       []time.Duration // each reconnection, from its dial to its synced
	lost, dups int64           // lines missed that did not come back; lines that came twice or out of order
}

// runRecover measures recovery on srv, a demo whose history keeps at least
// spec.lines+1 lines (-history), with two clients of the JSON protocol in the
// default room: a talker, and a listener that, each round, leaves having
// seen line ID, while the talker says spec.lines lines ("<round> <i>") and
// waits for its own echo of the last, then connects again asking for what
// came after ID (room=lobby:ID), timed from its dial to its synced. Every
// line must come back once, in order, before synced, and with no gap.
func runRecover(srv *server, spec recoverSpec, progress *progress) (recoverResult, error) {
	var res recoverResult
	room := chatroom.DefaultRoomName
	talker, err := dialJSON(srv.addr, room, 0, 32<<10, nil)
	if err != nil {
		return res, err
	}
	defer talker.conn().Close()
	listener, err := dialJSON(srv.addr, room, 0, 32<<10, nil)
	if err != nil {
		return res, err
	}
	deadline := time.Now().Add(time.Minute + time.Duration(spec.rounds*spec.lines)*10*time.Millisecond)
	talker.conn().SetDeadline(deadline)
	listener.conn().SetDeadline(deadline)

	// say has the talker say texts and waits for its echo of the last.
	say := func(texts ...string) error {
		sent := make(chan error, 1)
		go func() {
			for _, t := range texts {
				if err := talker.publish([]byte(t)); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		last := texts[len(texts)-1]
		for {
			text, err := talker.next()
			if err != nil {
				return errors.Join(fmt.Errorf("the talker: %w", err), <-sent)
			}
			if string(text) == last {
				return <-sent
			}
		}
	}
	// The line the listener has seen last, before it first leaves.
	if err := say("seen"); err != nil {
		listener.conn().Close()
		return res, err
	}
	var seen uint64
	for seen == 0 {
		line, err := listener.r.ReadSlice('\n')
		if err != nil {
			listener.conn().Close()
			return res, fmt.Errorf("the listener: %w", err)
		}
		id, text, ok, err := listener.say(line)
		if err != nil {
			listener.conn().Close()
			return res, err
		}
		if ok && string(text) == "seen" {
			seen = id
		}
	}
	listener.conn().Close()

	progress.start(fmt.Sprintf("room-json: %d reconnections missing %d lines", spec.rounds, spec.lines), int64(spec.rounds))
	texts := make([]string, spec.lines)
	for round := range spec.rounds {
		for i := range texts {
			texts[i] = strconv.Itoa(round) + " " + strconv.Itoa(i)
		}
		if err := say(texts...); err != nil {
			return res, err
		}
		got := 0
		onSay := func(id uint64, text []byte) error {
			if got < len(texts) && string(text) == texts[got] && id > seen {
				got++
				seen = id
				return nil
			}
			res.dups++ // a line again, out of order, or not one of the round's
			return nil
		}
		start := time.Now()
		c, err := dialJSON(srv.addr, room, seen, 32<<10, onSay)
		took := time.Since(start)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", round, err)
		}
		c.conn().Close()
		res.took = append(res.took, took)
		res.lost += int64(len(texts) - got)
		progress.add(1)
	}
	progress.end()
	return res, nil
}

// recoverTable runs the recover workload against room-json, the one
// server whose protocol recovers, if -servers names it, and prints the figures over every reconnection of
// every run.
func (b *bench) recoverTable() error {
	c := b.cfg
	spec := recoverSpec{lines: c.recoverLines, rounds: c.recoverRounds}
	fmt.Fprintf(b.out, "\n### recover: a JSON client reconnects having missed %d lines, %d times in each of %d runs\n\n", spec.lines, spec.rounds, c.runs)
	fmt.Fprintln(b.out, "| server | reconnections | dial to synced: median | min | max | lost | duplicated or out of order |")
	fmt.Fprintln(b.out, "| --- | --- | --- | --- | --- | --- | --- |")
	if !slices.Contains(c.servers, "room-json") {
		fmt.Fprintln(b.out, "| – | skipped: only room-json's protocol recovers; add it to -servers |")
	}
	for _, kind := range c.servers {
		if kind != "room-json" {
			continue
		}
		var all recoverResult
		for range c.runs {
			// The history keeps every line missed and the one seen before
			// them (else the hub cannot tell that nothing fell between),
			// and half the outbox, what the hub gives a recovering client
			// at most, takes them all; else it sends a gap.
			opts := serverOpts{outbox: max(c.outbox, 2*(spec.lines+64)), history: spec.lines + 1}
			srv, err := startServer(kind, c.paths, opts)
			if err != nil {
				return err
			}
			r, err := runRecover(srv, spec, b.progress)
			srv.stop()
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			all.took = append(all.took, r.took...)
			all.lost += r.lost
			all.dups += r.dups
		}
		slices.Sort(all.took)
		fmt.Fprintf(b.out, "| %s | %d | %v | %v | %v | %d | %d |\n", kind, len(all.took), round(all.took[len(all.took)/2]),
			round(all.took[0]), round(all.took[len(all.took)-1]), all.lost, all.dups)
	}
	return nil
}
