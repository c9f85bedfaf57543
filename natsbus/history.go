package natsbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chatroom-go/chatroom"
)

// This file is the room's history: a stream that keeps the last say and
// /me lines published on the room's "line" subject.

// readHistory makes sure the room's history stream keeps n lines, and
// returns the last n, oldest first. It remembers which they were, so that
// the receiver does not relay again one it receives live as well.
func (b *Bus) readHistory(ctx context.Context, n int) ([][]byte, error) {
	cfg := jetstream.StreamConfig{
		Name:        "chatroom_" + b.room + "_history",
		Description: "the last chat lines of chat room " + b.room,
		Subjects:    []string{b.prefix + "line"},
		MaxMsgs:     int64(n),
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
	}
	stream, err := b.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		cfg.Storage = jetstream.MemoryStorage
		var err2 error
		if stream, err2 = b.js.CreateOrUpdateStream(ctx, cfg); err2 != nil {
			return nil, fmt.Errorf("natsbus: the history stream: %w", err)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsbus: the history stream: %w", err)
	}
	last := info.State.LastSeq
	first := max(info.State.FirstSeq, 1)
	if last >= uint64(n) {
		first = max(first, last-uint64(n)+1)
	}
	fetched := make(map[msgID]bool, n)
	var lines [][]byte
	for seq := first; seq <= last && last > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue // dropped for a newer one meanwhile
		case err != nil:
			return nil, fmt.Errorf("natsbus: reading the history: %w", err)
		}
		e, err := decode(m.Data)
		if err != nil || e.kind != kind(chatroom.BusSay) {
			continue
		}
		fetched[msgID{e.from, e.seq}] = true
		lines = append(lines, e.msg.Line)
	}
	b.mu.Lock()
	b.fetched = fetched
	b.mu.Unlock()
	return lines, nil
}
