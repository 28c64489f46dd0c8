// Package ffpipe runs an ffmpeg child that reads hub access units as
// MPEG-TS on its stdin, for the components that analyse a live stream
// with ffmpeg filters (live captions, live QC).
package ffpipe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/mps-dev/mps/ingest/tsdemux"
	"github.com/mps-dev/mps/stream"
)

// queueLen bounds the muxed units waiting for ffmpeg's stdin.
const queueLen = 512

// InputArgs read MPEG-TS from stdin with little probing.
var InputArgs = []string{"-probesize", "32768", "-analyzeduration", "500000", "-f", "mpegts", "-i", "pipe:0"}

// Child is one ffmpeg process fed with the units of some hub tracks.
type Child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mux    *tsdemux.Muxer
	buf    bytes.Buffer
	in     chan []byte
	exited chan struct{}
	fed    chan struct{}
	err    error // of Wait, once exited is closed
	once   sync.Once
	// Stdout and Stderr are the child's outputs; read them until EOF.
	Stdout io.ReadCloser
	Stderr io.ReadCloser
	// Dropped counts units dropped because ffmpeg did not keep up.
	Dropped int
}

// Start runs ffmpeg with args (which must read InputArgs' input) and
// muxes the units of tracks for it. The child is killed when mps dies.
func Start(ffmpeg string, args []string, tracks []*stream.Track) (*Child, error) {
	c := &Child{in: make(chan []byte, queueLen), exited: make(chan struct{}), fed: make(chan struct{})}
	c.mux = &tsdemux.Muxer{W: &c.buf, Tracks: tracks}
	if err := c.mux.Initialize(); err != nil {
		return nil, err
	}
	cmd := exec.Command(ffmpeg, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if c.Stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if c.Stderr, err = cmd.StderrPipe(); err != nil {
		return nil, err
	}
	c.cmd = cmd
	started := make(chan error, 1)
	go func() {
		// Locked to its thread, so that Pdeathsig fires only when mps dies.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start %s: %w", ffmpeg, err)
			close(c.exited)
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		c.stdin.Close()
		return nil, err
	}
	go c.feed()
	return c, nil
}

// Supported reports whether the child gets t's units.
func (c *Child) Supported(t *stream.Track) bool { return c.mux.Supported(t) }

// Write muxes one access unit for the child. It never blocks: when ffmpeg
// falls behind, the unit is dropped (and counted). Call it from one
// goroutine, before CloseInput.
func (c *Child) Write(au *stream.AccessUnit) {
	c.buf.Reset()
	if err := c.mux.WriteUnit(au); err != nil || c.buf.Len() == 0 {
		return
	}
	select {
	case c.in <- append([]byte(nil), c.buf.Bytes()...):
	default:
		c.Dropped++
	}
}

func (c *Child) feed() {
	defer close(c.fed)
	defer c.stdin.Close()
	for {
		select {
		case b, ok := <-c.in:
			if !ok {
				return
			}
			if _, err := c.stdin.Write(b); err != nil {
				// ffmpeg is gone: drain so that CloseInput returns.
				for range c.in {
				}
				return
			}
		case <-c.exited:
			return
		}
	}
}

// CloseInput ends the child's input: ffmpeg finishes what it has and exits.
func (c *Child) CloseInput() {
	c.once.Do(func() { close(c.in) })
}

// Wait waits until the child exited, or kills it after timeout.
func (c *Child) Wait(timeout time.Duration) error {
	select {
	case <-c.exited:
	case <-time.After(timeout):
		c.Kill()
		<-c.exited
	}
	c.CloseInput()
	<-c.fed
	var ee *exec.ExitError
	if errors.As(c.err, &ee) && ee.ExitCode() == -1 {
		return nil // killed
	}
	return c.err
}

// Kill stops the child at once.
func (c *Child) Kill() {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
}
