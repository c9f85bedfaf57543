module github.com/chatroom-go/chatroom

go 1.25
