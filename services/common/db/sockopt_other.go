//go:build !linux

package db

import "time"

// TCP_USER_TIMEOUT is Linux's; elsewhere the keepalives alone bound a dead peer.
func setTCPUserTimeout(uintptr, time.Duration) error { return nil }
