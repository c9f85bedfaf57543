//go:build !linux

package main

import (
	"errors"
	"fmt"
)

// newPollIO: the load tool's poller is epoll's; elsewhere the rooms
// workload reads with a goroutine per client.
func newPollIO(int, func(int, []byte)) (roomsIO, error) {
	return nil, fmt.Errorf("the load tool's poller: %w", errors.ErrUnsupported)
}
