//go:build linux && !386

package chatroom

import (
	"syscall"
	"unsafe"
)

// On Linux the hub's non-blocking calls on its sockets are raw
// (syscall.RawSyscall): they return at once, so there is no processor to
// hand on while they run, and they skip the runtime's entersyscall, whose
// first call after the process was idle wakes the runtime's monitor thread
// (sysmon), which then naps and wakes again for a while. At a low message
// rate that cost a sixth of the hub's CPU (docs/performance.md). Each is
// made on a descriptor the caller holds (inside RawConn.Control, Read or
// Write), and only on non-blocking sockets. (linux/386 makes socket calls
// through socketcall: it uses the runtime's calls, sys_unix.go.)

// sysWrite writes p to the socket fd without waiting.
func sysWrite(fd uintptr, p []byte) (int, error) { return sysIO(syscall.SYS_WRITE, fd, p) }

// sysRead reads from the socket fd into p without waiting: 0 and no error
// is the end of input.
func sysRead(fd uintptr, p []byte) (int, error) { return sysIO(syscall.SYS_READ, fd, p) }

// sysIO makes trap, a read or a write, on fd with p.
func sysIO(trap, fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(n), nil
	}
}

// sysPeek looks at the socket fd's next byte without taking it or
// waiting: 1 is input, 0 the end of input, syscall.EAGAIN none yet.
func sysPeek(fd uintptr) (int, error) {
	var b [1]byte
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(n), nil
	}
}
