package chatroom_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// TestHubRoom: Hub.Room returns the room it opened, or finds, once the
// hub has answered.
func TestHubRoom(t *testing.T) {
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock))
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	games, err := hub.Room("#Games")
	require.NoError(t, err)
	require.NotNil(t, games)
	assert.Equal(t, "Games", games.Name())
	again, err := hub.Room("games")
	require.NoError(t, err)
	assert.Same(t, games, again, "rooms are unique ignoring case")
	lobby, err := hub.Room(chatroom.DefaultRoomName)
	require.NoError(t, err)
	assert.Equal(t, chatroom.DefaultRoomName, lobby.Name())
	_, err = hub.Room("no room")
	assert.ErrorIs(t, err, chatroom.ErrInvalidName)
}
