package transcoder

import "syscall"

// childAttr makes the child die with the thread that started it (the
// ladder keeps that thread locked for the child's whole life, so this
// means: when mps dies, even by SIGKILL) and puts it in its own process
// group, so that a stop signals everything it started.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
