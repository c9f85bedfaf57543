//go:build !linux

package chatroom

// Off Linux there is no poller: every client is read by a goroutine of its
// own (see poller_linux.go).

type poller struct{}

func newPoller(*Room) *poller { return nil }

func (*poller) register(*client) error { return nil }
func (*poller) unregister(*client)     {}
func (*poller) arm(*client) error      { return nil }
func (*poller) now() int64             { return 0 }
func (*poller) run()                   {}
func (*poller) close()                 {}
func (*poller) stepOut()               {}
func (*poller) wake()                  {}

const (
	pollOff int32 = iota
	pollBusy
	pollIdle
)
