//go:build !linux

package chatroom

// Off Linux there is no poller: every client is read by a goroutine of its
// own (see poller_linux.go).

type poller struct{}

func newPoller(*Hub) *poller { return nil }

func (*poller) register(*Client) error { return nil }
func (*poller) unregister(*Client)     {}
func (*poller) arm(*Client) error      { return nil }
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
