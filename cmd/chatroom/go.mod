module github.com/chatroom-go/chatroom/cmd/chatroom

go 1.25

require (
	github.com/chatroom-go/chatroom v0.0.0
	github.com/chatroom-go/chatroom/web v0.0.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/coder/websocket v1.8.15 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
