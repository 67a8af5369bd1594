package main

import (
	"fmt"
	"net"
	"os"
)

// notifySystemd sends a state line to systemd (sd_notify) when the service
// runs under Type=notify; elsewhere it does nothing.
func notifySystemd(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}

// reloadingState is the RELOADING=1 message with the monotonic timestamp
// systemd asks for with it.
func reloadingState() string {
	usec, _ := monotonicUsec()
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec)
}
