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
// connection, else one Write each.
func Writev(c net.Conn, bufs ...[]byte) (int64, error) {
	if rc, ok := c.(*Conn); ok {
		return rc.writev(bufs)
	}
	return writeEach(c, bufs)
}

func writeEach(c net.Conn, bufs [][]byte) (int64, error) {
	var total int64
	for _, b := range bufs {
		n, err := c.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
