//go:build unix && !linux

package transcoder

import "syscall"

// childAttr puts the child in its own process group. Only Linux can make it
// die with its parent.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
