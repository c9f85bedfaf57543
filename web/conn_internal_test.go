package web

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMessagesArePaced: a WebSocket's messages are read at its rate after
// its burst, however small they are: 1 000 messages at 20 a second after
// 50 take exactly (1000-50)/20 = 47.5 s; and a read deadline ends a wait
// for a token.
func TestMessagesArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := &messageConn{rate: 20, burst: 50, tokens: 50, readCtx: ctx}
		start := time.Now()
		for range 1000 {
			require.NoError(t, c.pace())
		}
		assert.Equal(t, 47500*time.Millisecond, time.Since(start))

		cancel() // the connection ends while a message waits for its token
		assert.Error(t, c.pace())
	})
}
