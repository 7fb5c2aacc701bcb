package gateway

import (
	"bytes"
	"sync"
)

// bufPool holds copy buffers so a stream costs no allocation per chunk.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// endScan watches a stream for its proper end: "data: [DONE]" for SSE,
// a line with "done":true for Ollama's NDJSON, or an error the instance
// reported itself. A marker split across two reads is still found.
type endScan struct {
	markers [][]byte
	carry   []byte // the previous read's tail
	ended   bool
}

var (
	sseMarkers    = [][]byte{[]byte("data: [DONE]"), []byte(`data: {"error"`)}
	ndjsonMarkers = [][]byte{[]byte(`"done":true`), []byte(`{"error"`)}
)

const maxMarker = 16

func newEndScan(sse bool) *endScan {
	m := ndjsonMarkers
	if sse {
		m = sseMarkers
	}
	return &endScan{markers: m, carry: make([]byte, 0, 2*maxMarker)}
}

func (s *endScan) feed(p []byte) {
	if s.ended {
		return
	}
	for _, m := range s.markers {
		if bytes.Contains(p, m) {
			s.ended = true
			return
		}
	}
	// Join the previous tail with this head to catch a split marker.
	head := p[:min(len(p), maxMarker)]
	joined := append(s.carry, head...)
	for _, m := range s.markers {
		if bytes.Contains(joined, m) {
			s.ended = true
			return
		}
	}
	tail := p[max(0, len(p)-maxMarker):]
	if len(p) < maxMarker {
		// Keep what is left of the old tail in front of a short read.
		keep := joined[max(0, len(joined)-maxMarker):]
		s.carry = append(s.carry[:0], keep...)
		return
	}
	s.carry = append(s.carry[:0], tail...)
}
