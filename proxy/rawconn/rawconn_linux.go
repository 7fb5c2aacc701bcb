package rawconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a TCP connection whose Read, Write and writev are raw system
// calls; everything else is the *net.TCPConn's.
//
// The functions handed to the runtime's poller, and what they work on,
// live in the Conn: a closure per call would cost allocations on every
// read and write. readMu and writeMu give that state one reader and one
// writer at a time.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	readMu  sync.Mutex
	rbuf    []byte
	rn      int
	rerrno  unix.Errno
	readFn  func(fd uintptr) bool
	writeMu sync.Mutex
	wbufs   [][]byte
	wtotal  int64
	werrno  unix.Errno
	writeFn func(fd uintptr) bool
	vec     [maxIovecs][]byte // what wbufs points into
	iov     [maxIovecs]unix.Iovec
}

// maxIovecs bounds one writev; more buffers go in further calls.
const maxIovecs = 16

// Wrap returns c with raw reads and writes when it is a TCP connection,
// else c itself.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	rw := &Conn{TCPConn: tc, rc: rc}
	rw.readFn, rw.writeFn = rw.read, rw.write
	return rw
}

// opError shapes err as package net does, so callers that look for a
// *net.OpError, a timeout or net.ErrClosed find them.
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerrno
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is one attempt; false sends the poller to wait for data.
func (c *Conn) read(fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		c.rn, c.rerrno = int(r), e
		return true
	}
}

func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.writev([][]byte{p})
	return int(n), err
}

// writev writes bufs in order; it keeps no reference to bufs itself, so a
// caller's slice of buffers may stay on its stack.
func (c *Conn) writev(bufs [][]byte) (int64, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	var total int64
	for len(bufs) > 0 {
		k := copy(c.vec[:], bufs)
		bufs = bufs[k:]
		c.wbufs, c.wtotal, c.werrno = c.vec[:k], 0, 0
		err := c.rc.Write(c.writeFn)
		total += c.wtotal
		errno := c.werrno
		clear(c.vec[:k]) // keep no caller's buffer alive
		c.wbufs = nil
		switch {
		case err != nil:
			return total, c.opError("write", err)
		case errno != 0:
			return total, c.opError("write", os.NewSyscallError("writev", errno))
		}
	}
	return total, nil
}

// write writes all of c.wbufs, or returns false for the poller to wait
// for room.
func (c *Conn) write(fd uintptr) bool {
	for {
		k := 0
		for _, b := range c.wbufs {
			if len(b) > 0 {
				c.iov[k].Base = &b[0]
				c.iov[k].SetLen(len(b))
				k++
			}
		}
		if k == 0 {
			return true
		}
		r, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&c.iov[0])), uintptr(k))
		clear(c.iov[:k])
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			c.werrno = e
			return true
		}
		w := int64(r)
		c.wtotal += w
		for len(c.wbufs) > 0 && w >= int64(len(c.wbufs[0])) {
			w -= int64(len(c.wbufs[0]))
			c.wbufs = c.wbufs[1:]
		}
		if w > 0 {
			c.wbufs[0] = c.wbufs[0][w:]
		}
	}
}
