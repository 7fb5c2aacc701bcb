package rawconn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a TCP connection whose Read, Write and writev are raw system
// calls; everything else is the *net.TCPConn's.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
}

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
	return &Conn{TCPConn: tc, rc: rc}
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
	var n int
	var errno unix.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the poller waits for data
			}
			n, errno = int(r), e
			return true
		}
	})
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

func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.writev([][]byte{p})
	return int(n), err
}

// maxIovecs bounds one writev; the rest goes in the next call.
const maxIovecs = 64

func (c *Conn) writev(bufs [][]byte) (int64, error) {
	var iov [maxIovecs]unix.Iovec
	var total int64
	var errno unix.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			k := 0
			for _, b := range bufs {
				if k == len(iov) {
					break
				}
				if len(b) > 0 {
					iov[k].Base = &b[0]
					iov[k].SetLen(len(b))
					k++
				}
			}
			if k == 0 {
				return true
			}
			r, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
			switch e {
			case 0:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the poller waits for room
			default:
				errno = e
				return true
			}
			w := int64(r)
			total += w
			for len(bufs) > 0 && w >= int64(len(bufs[0])) {
				w -= int64(len(bufs[0]))
				bufs = bufs[1:]
			}
			if w > 0 {
				bufs[0] = bufs[0][w:]
			}
		}
	})
	switch {
	case err != nil:
		return total, c.opError("write", err)
	case errno != 0:
		return total, c.opError("write", os.NewSyscallError("writev", errno))
	}
	return total, nil
}
