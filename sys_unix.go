//go:build unix && !(linux && !386)

package chatroom

import "syscall"

// Elsewhere on Unix the hub's non-blocking calls on its sockets are the
// runtime's own (see sys_linux.go).

// sysWrite writes p to the socket fd without waiting.
func sysWrite(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// sysRead reads from the socket fd into p without waiting: 0 and no error
// is the end of input.
func sysRead(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// sysPeek looks at the socket fd's next byte without taking it or
// waiting: 1 is input, 0 the end of input, syscall.EAGAIN none yet.
func sysPeek(fd uintptr) (int, error) {
	var b [1]byte
	for {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
