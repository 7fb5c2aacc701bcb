package rawconn

import "net"

// Listener wraps every connection it accepts with Wrap.
type Listener struct{ net.Listener }

func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// Writev writes bufs to c in order, as one writev where c is a raw
// connection (else as net.Buffers does).
func Writev(c net.Conn, bufs ...[]byte) (int64, error) {
	if rc, ok := c.(*Conn); ok {
		return rc.writev(bufs)
	}
	nb := net.Buffers(bufs)
	return nb.WriteTo(c)
}
