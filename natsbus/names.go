package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/chatroom-go/chatroom"
)

// This file is the names: who holds each name in the hub, in the hub's
// key-value bucket, as key nameKey(name) and value the holder's bus id.

// openBucket returns the names bucket, creating it if need be (on file
// storage, or in memory if the server has no file storage). A bucket
// made by the operator is used as it is.
func (b *Bus) openBucket(ctx context.Context) (jetstream.KeyValue, error) {
	for range 2 {
		kv, err := b.js.KeyValue(ctx, b.subj.bucket)
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			if err != nil {
				return nil, fmt.Errorf("natsbus: the names bucket %s: %w", b.subj.bucket, err)
			}
			return kv, nil
		}
		cfg := jetstream.KeyValueConfig{
			Bucket:      b.subj.bucket,
			Description: "who holds each name in chat hub " + b.ns,
			History:     1,
			Storage:     jetstream.FileStorage,
		}
		kv, err = b.js.CreateKeyValue(ctx, cfg)
		if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			cfg.Storage = jetstream.MemoryStorage
			if kv2, err2 := b.js.CreateKeyValue(ctx, cfg); err2 == nil {
				kv, err = kv2, nil
			}
		}
		switch {
		case errors.Is(err, jetstream.ErrBucketExists):
			continue // made by another process meanwhile: read it
		case err != nil:
			return nil, fmt.Errorf("natsbus: creating the names bucket %s: %w", b.subj.bucket, err)
		}
		return kv, nil
	}
	return nil, fmt.Errorf("natsbus: the names bucket %s could not be created or read", b.subj.bucket)
}

// Claim claims name for one of this process's clients with the bucket's
// atomic Create. A name held by a process that is gone (not heard from for
// five heartbeats) is taken over with an atomic Update of the revision
// read, so of two processes taking it over at once, one gets it. It returns
// an error wrapping [chatroom.ErrNameTaken] if someone else holds the
// name, here or elsewhere.
func (b *Bus) Claim(ctx context.Context, name string) error {
	key := nameKey(name)
	b.mu.Lock()
	if _, held := b.claimed[key]; held {
		b.mu.Unlock()
		return fmt.Errorf("natsbus: %q: %w", name, chatroom.ErrNameTaken)
	}
	b.claimed[key] = 0 // claiming: another client of ours asking now is told it is taken
	b.mu.Unlock()

	rev, err := b.claim(ctx, key)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		delete(b.claimed, key)
		if errors.Is(err, chatroom.ErrNameTaken) {
			return fmt.Errorf("natsbus: %q: %w", name, err)
		}
		return fmt.Errorf("natsbus: claiming %q: %w", name, err)
	}
	b.claimed[key] = rev
	return nil
}

// claim takes key for this process and returns its revision.
func (b *Bus) claim(ctx context.Context, key string) (uint64, error) {
	for range 3 { // the entry may change under us; then look again
		rev, err := b.names.Create(ctx, key, []byte(b.id))
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return rev, err
		}
		e, err := b.names.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue // released since: create it again
		case err != nil:
			return 0, err
		}
		// Ours but no client of ours claims it (claimed says so): left by a
		// client whose release has not happened yet. Or the holder is gone.
		if owner := string(e.Value()); owner != b.id && b.alive(owner) {
			return 0, chatroom.ErrNameTaken
		}
		rev, err = b.names.Update(ctx, key, []byte(b.id), e.Revision())
		if err == nil || !isWrongRevision(err) {
			return rev, err
		}
	}
	return 0, chatroom.ErrNameTaken
}

// isWrongRevision reports whether a conditional write failed because the
// entry changed since it was read.
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Release gives up a name that Claim reserved: the releaser goroutine
// deletes it from the bucket, if it is still the revision this process
// wrote. It never waits.
func (b *Bus) Release(name string) {
	key := nameKey(name)
	b.mu.Lock()
	rev, held := b.claimed[key]
	if !held {
		b.mu.Unlock()
		return
	}
	delete(b.claimed, key)
	b.releases = append(b.releases, release{key, rev})
	b.mu.Unlock()
	wake(b.relWake)
}

// releaser is the releaser goroutine: it deletes the names released, and
// when the bus closes, every name this process's clients still hold,
// within closeTimeout. A name it could not delete stays with this process's
// id, and is taken over once this process is gone.
func (b *Bus) releaser() {
	defer b.wg.Done()
	for {
		select {
		case <-b.relWake:
			b.releaseAll(context.Background(), false)
		case <-b.done:
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			b.releaseAll(ctx, true)
			cancel()
			return
		}
	}
}

// releaseAll deletes the names in b.releases, and with all, every name
// claimed.
func (b *Bus) releaseAll(ctx context.Context, all bool) {
	b.mu.Lock()
	todo := b.releases
	b.releases = nil
	if all {
		for key, rev := range b.claimed {
			if rev != 0 {
				todo = append(todo, release{key, rev})
			}
		}
		clear(b.claimed)
	}
	b.mu.Unlock()
	for _, r := range todo {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		err := b.names.Delete(dctx, r.key, jetstream.LastRevision(r.rev))
		cancel()
		if err != nil && !isWrongRevision(err) {
			b.log.Debug("natsbus: a name was not released", "key", r.key, "err", err)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// alive reports whether the process id may still hold a name: it was heard
// from lately, or this process has not listened long enough to tell.
func (b *Bus) alive(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peers[id] != nil || time.Since(b.opened) < (deadAfter+1)*b.cfg.heartbeat
}

// release is a name to delete from the bucket, if it is still the
// revision this process wrote.
type release struct {
	key string
	rev uint64
}
