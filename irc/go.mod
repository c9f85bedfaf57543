module github.com/chatroom-go/chatroom/irc

go 1.25

require (
	github.com/chatroom-go/chatroom v0.0.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)
