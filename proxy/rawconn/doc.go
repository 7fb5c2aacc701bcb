// Package rawconn makes the gateway's TCP connections read and write with
// raw system calls.
//
// Go's ordinary path into a system call tells the scheduler about it, so
// that a call that blocks gives its P to another thread. Two things follow
// on a proxy, whose calls are non-blocking socket reads and writes:
//   - the first call after the process was idle wakes the sysmon thread,
//     which then keeps waking every 20 µs while requests are in flight;
//   - a write to a local peer runs the kernel's whole receive path inside
//     the call (tens of µs), long enough for sysmon to hand the P to
//     another thread, which the writer must take back when it returns.
//
// Both are context switches that do no work, and where the gateway has
// few CPUs they compete with the one thread that does. The sockets are
// non-blocking, so a raw call never waits in the kernel: when it would,
// it returns EAGAIN and the runtime's poller waits for readiness as
// usual, deadlines included. Measured with wrk at 64 connections and the
// gateway on one CPU: context switches per request fell from 9-16 to 4-5
// and CPU per request by about 15%.
package rawconn
