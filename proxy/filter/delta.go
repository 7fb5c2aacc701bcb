package filter

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// DeltaText returns the generated text in a piece of a streamed answer,
// the text of all its lines concatenated: with sse, the "data:" lines of
// an OpenAI stream (choices[].delta.content of chat, choices[].text of
// completions), of a Responses API stream (the "delta" string of its
// response.*.delta events: text, and also reasoning summaries and tool
// arguments) or of an Anthropic Messages stream (delta.text of its
// content_block_delta events); else the lines of an Ollama NDJSON stream
// (message.content of /api/chat, response of /api/generate).
//
// Each line is read by a small JSON scanner rather than decoded: the
// strings wanted are unescaped as encoding/json would, and a line that is
// not one valid JSON object (a "[DONE]", a comment, half a line) gives no
// text. The last line need not end in a newline, but a line cut in two
// gives nothing from either part: to match text across reads cut
// anywhere, use Stream.FeedDelta.
func DeltaText(sse bool, chunk []byte) string {
	return string(AppendDeltaText(nil, sse, chunk))
}

// AppendDeltaText is DeltaText appending to dst, for callers that reuse a
// buffer.
func AppendDeltaText(dst []byte, sse bool, chunk []byte) []byte {
	for len(chunk) > 0 {
		var line []byte
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			line, chunk = chunk[:i], chunk[i+1:]
		} else {
			line, chunk = chunk, nil
		}
		dst = appendLineText(dst, sse, line)
	}
	return dst
}

// appendLineText appends the text of one line, or nothing when the line
// is not an SSE data line (with sse) or not a valid JSON object.
func appendLineText(dst []byte, sse bool, line []byte) []byte {
	root := ndRoot
	if sse {
		if !bytes.HasPrefix(line, []byte("data:")) {
			return dst
		}
		line = line[5:]
		root = sseRoot
	}
	p := scanner{data: line, out: dst}
	p.ws()
	if p.i >= len(p.data) || p.data[p.i] != '{' || !p.value(root) {
		return dst
	}
	p.ws()
	if p.i != len(p.data) {
		return dst
	}
	return p.out
}

// Where the scanner is in a chunk's JSON, as far as the text goes.
type place uint8

const (
	skip    place = iota // nothing wanted below here
	sseRoot              // OpenAI chunk object
	choices              // its choices array
	choice               // one choice object
	delta                // a choice's delta object
	event                // an event's "delta": a string (Responses) or an object (Messages)
	ndRoot               // Ollama line object
	message              // its message object
	text                 // a string value that is generated text
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// child is the place of the value under key in an object at p.
func child(p place, key []byte) place {
	switch p {
	case sseRoot:
		switch string(key) {
		case "choices":
			return choices
		case "delta":
			return event
		}
	case event:
		if string(key) == "text" {
			return text
		}
	case choice:
		switch string(key) {
		case "delta":
			return delta
		case "text":
			return text
		}
	case delta, message:
		if string(key) == "content" {
			return text
		}
	case ndRoot:
		switch string(key) {
		case "message":
			return message
		case "response":
			return text
		}
	}
	return skip
}

// scanner validates one JSON value as encoding/json does and appends the
// strings found at text places to out.
type scanner struct {
	data  []byte
	i     int
	depth int
	out   []byte
}

func (p *scanner) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) value(at place) bool {
	p.ws()
	if p.i >= len(p.data) {
		return false
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(at)
	case c == '[':
		return p.array(at)
	case c == '"':
		if at == text || at == event {
			return p.str(true)
		}
		return p.str(false)
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return false
}

func (p *scanner) object(at place) bool {
	if p.depth++; p.depth > maxDepth {
		return false
	}
	p.i++ // '{'
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		p.depth--
		return true
	}
	for {
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return false
		}
		key, ok := p.key()
		if !ok {
			return false
		}
		next := skip
		if at != skip {
			next = child(at, key)
		}
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return false
		}
		p.i++
		if !p.value(next) {
			return false
		}
		p.ws()
		if p.i >= len(p.data) {
			return false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			p.depth--
			return true
		default:
			return false
		}
	}
}

func (p *scanner) array(at place) bool {
	if p.depth++; p.depth > maxDepth {
		return false
	}
	elem := skip
	if at == choices {
		elem = choice
	}
	p.i++ // '['
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		p.depth--
		return true
	}
	for {
		if !p.value(elem) {
			return false
		}
		p.ws()
		if p.i >= len(p.data) {
			return false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			p.depth--
			return true
		default:
			return false
		}
	}
}

// key scans an object key. Without escapes it is the raw bytes; with
// them it is unescaped into out's spare capacity, which the caller must
// use before out grows.
func (p *scanner) key() ([]byte, bool) {
	start := p.i + 1
	for j := start; j < len(p.data); j++ {
		c := p.data[j]
		if c == '"' {
			p.i = j + 1
			return p.data[start:j], true
		}
		if c == '\\' || c < ' ' {
			break
		}
	}
	mark := len(p.out)
	if !p.str(true) {
		return nil, false
	}
	k := p.out[mark:]
	p.out = p.out[:mark]
	return k, true
}

// str scans a string at p.i (its opening quote), appending its unescaped
// contents to out when keep is set.
func (p *scanner) str(keep bool) bool {
	p.i++ // '"'
	for {
		// A run of plain bytes.
		start := p.i
		for p.i < len(p.data) {
			c := p.data[p.i]
			if c == '"' || c == '\\' || c < ' ' || c >= utf8.RuneSelf {
				break
			}
			p.i++
		}
		if keep {
			p.out = append(p.out, p.data[start:p.i]...)
		}
		if p.i >= len(p.data) {
			return false
		}
		switch c := p.data[p.i]; {
		case c == '"':
			p.i++
			return true
		case c < ' ':
			return false
		case c >= utf8.RuneSelf:
			// Invalid UTF-8 becomes U+FFFD, as encoding/json does.
			r, size := utf8.DecodeRune(p.data[p.i:])
			if keep {
				p.out = utf8.AppendRune(p.out, r)
			}
			p.i += size
		default: // '\\'
			if !p.escape(keep) {
				return false
			}
		}
	}
}

func (p *scanner) escape(keep bool) bool {
	if p.i+1 >= len(p.data) {
		return false
	}
	var b byte
	switch p.data[p.i+1] {
	case '"', '\\', '/':
		b = p.data[p.i+1]
	case 'b':
		b = '\b'
	case 'f':
		b = '\f'
	case 'n':
		b = '\n'
	case 'r':
		b = '\r'
	case 't':
		b = '\t'
	case 'u':
		r := hex4(p.data[p.i+2:])
		if r < 0 {
			return false
		}
		p.i += 6
		if utf16.IsSurrogate(r) {
			// A pair makes one rune; anything else is U+FFFD.
			if len(p.data)-p.i >= 6 && p.data[p.i] == '\\' && p.data[p.i+1] == 'u' {
				if r2 := hex4(p.data[p.i+2:]); r2 >= 0 {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						p.i += 6
						if keep {
							p.out = utf8.AppendRune(p.out, dec)
						}
						return true
					}
				}
			}
			r = utf8.RuneError
		}
		if keep {
			p.out = utf8.AppendRune(p.out, r)
		}
		return true
	default:
		return false
	}
	p.i += 2
	if keep {
		p.out = append(p.out, b)
	}
	return true
}

// hex4 decodes the 4 hex digits at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

func (p *scanner) literal(word string) bool {
	if len(p.data)-p.i < len(word) || string(p.data[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *scanner) number() bool {
	d := p.data
	if d[p.i] == '-' {
		p.i++
	}
	if p.i >= len(d) {
		return false
	}
	switch {
	case d[p.i] == '0':
		p.i++
	case '1' <= d[p.i] && d[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.i < len(d) && d[p.i] == '.' {
		p.i++
		if !p.digits() {
			return false
		}
	}
	if p.i < len(d) && (d[p.i] == 'e' || d[p.i] == 'E') {
		p.i++
		if p.i < len(d) && (d[p.i] == '+' || d[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more digits.
func (p *scanner) digits() bool {
	start := p.i
	for p.i < len(p.data) && '0' <= p.data[p.i] && p.data[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
