//go:build !linux

package rawconn

import "net"

// Conn exists only on Linux; elsewhere Wrap leaves connections as they are.
type Conn struct{ net.Conn }

func Wrap(c net.Conn) net.Conn { return c }

func (c *Conn) writev(bufs [][]byte) (int64, error) { return writeEach(c.Conn, bufs) }
