package gateway

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanModelRequest reads modelRequest's fields without reflection, and
// validates the whole body as it goes: every request pays for this
// parse, so it is one pass of small code rather than json.Valid's state
// machine and then a scan. Run cold, as every request's code is on an
// idle server, those took about 5 µs of a small request's way in; on a
// long chat's 1 MB, json.Valid alone took 3.1 ms where this takes 0.65
// (warm, on the 2-core build machine). ok is false for a body that is
// not JSON, and wherever the scan would have to guess how encoding/json
// treats the input (a key in another case or with escapes, an escaped
// string or one with invalid UTF-8, a number that is not a plain int, a
// value of an unexpected type, nesting deeper than maxScanDepth); the
// caller then decodes the body with encoding/json, which judges it, so
// both paths agree by construction.
func scanModelRequest(body []byte) (m modelRequest, ok bool) {
	s := scanner{b: body}
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "model":
			return s.str(&m.Model)
		case "name":
			return s.str(&m.Name)
		case "user":
			return s.str(&m.User)
		case "stream":
			return s.optBool(&m.Stream)
		case "max_tokens":
			return s.optInt(&m.MaxTokens)
		case "max_completion_tokens":
			return s.optInt(&m.MaxCompletionTokens)
		case "max_output_tokens":
			return s.optInt(&m.MaxOutputTokens)
		case "options":
			if s.null() {
				return true
			}
			return s.object(func(key []byte) bool {
				if string(key) == "num_predict" {
					return s.optInt(&m.Options.NumPredict)
				}
				return !strings.EqualFold(string(key), "num_predict") && s.skip()
			})
		case "stream_options":
			if s.null() {
				m.StreamOptions = nil
				return true
			}
			if m.StreamOptions == nil {
				m.StreamOptions = &struct {
					IncludeUsage bool `json:"include_usage"`
				}{}
			}
			return s.object(func(key []byte) bool {
				if string(key) == "include_usage" {
					return s.boolean(&m.StreamOptions.IncludeUsage)
				}
				return !strings.EqualFold(string(key), "include_usage") && s.skip()
			})
		}
		for _, k := range requestKeys {
			if strings.EqualFold(string(key), k) {
				return false // encoding/json would match it regardless of case
			}
		}
		return s.skip()
	})
	if ok {
		s.space()
		ok = s.i == len(s.b)
	}
	return m, ok
}

// requestKeys are the top-level keys modelRequest reads.
var requestKeys = []string{"model", "name", "user", "stream", "max_tokens", "max_completion_tokens", "max_output_tokens", "options", "stream_options"}

// scanner walks JSON, checking it against RFC 8259 as encoding/json
// does; its methods return false on what is not JSON or is left to
// encoding/json.
type scanner struct {
	b     []byte
	i     int
	depth int
}

// maxScanDepth bounds nesting; deeper bodies are encoding/json's to judge
// (it allows 10000).
const maxScanDepth = 1000

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object calls field for each key, positioned at its value; field must
// consume the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	if s.depth++; s.depth > maxScanDepth {
		return false
	}
	defer func() { s.depth-- }()
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		key, esc, ok := s.rawString()
		if !ok || esc || !utf8.Valid(key) {
			return false
		}
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.space()
		if !field(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// plainStringByte: bytes a string holds as they are, not its end, an
// escape or a control character (which JSON forbids there).
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// rawString consumes a string and returns its bytes between the quotes;
// esc says it holds escapes (and the bytes are not its value). ok is
// false for a string JSON does not allow: unterminated, a control
// character, a bad escape.
func (s *scanner) rawString() (raw []byte, esc, ok bool) {
	start := s.i + 1
	b := s.b
	for j := start; j < len(b); {
		c := b[j]
		if plainStringByte[c] {
			j++
			continue
		}
		switch {
		case c == '"':
			s.i = j + 1
			return b[start:j], esc, true
		case c != '\\' || j+1 >= len(b):
			return nil, false, false
		}
		esc = true
		switch b[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			if j+6 > len(b) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) || !isHex(b[j+5]) {
				return nil, false, false
			}
			j += 6
		default:
			return nil, false, false
		}
	}
	return nil, false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// literal consumes word (true, false, null) if it is next.
func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	return s.peek() == 'n' && s.literal("null")
}

// str reads a string into dst; null leaves dst as it is, as encoding/json
// does.
func (s *scanner) str(dst *string) bool {
	if s.null() {
		return true
	}
	if s.peek() != '"' {
		return false
	}
	raw, esc, ok := s.rawString()
	if !ok || esc || !utf8.Valid(raw) { // encoding/json replaces bad bytes
		return false
	}
	*dst = string(raw)
	return true
}

func (s *scanner) boolean(dst *bool) bool {
	switch {
	case s.null():
		return true
	case s.literal("true"):
		*dst = true
	case s.literal("false"):
		*dst = false
	default:
		return false
	}
	return true
}

// optBool reads into a pointer: null sets it to nil.
func (s *scanner) optBool(dst **bool) bool {
	if s.null() {
		*dst = nil
		return true
	}
	var v bool
	if !s.boolean(&v) {
		return false
	}
	*dst = &v
	return true
}

// optInt reads a plain integer into a pointer: null sets it to nil.
func (s *scanner) optInt(dst **int) bool {
	if s.null() {
		*dst = nil
		return true
	}
	start := s.i
	if !s.number() {
		return false
	}
	n, err := strconv.Atoi(string(s.b[start:s.i])) // fails for a fraction or an exponent
	if err != nil {
		return false
	}
	*dst = &n
	return true
}

// number consumes a number as RFC 8259 writes it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	b, i := s.b, s.i
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.i = i
	return true
}

// skip consumes any value, checking it.
func (s *scanner) skip() bool {
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.rawString()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip() })
	case c == '[':
		if s.depth++; s.depth > maxScanDepth {
			return false
		}
		defer func() { s.depth-- }()
		s.i++
		if s.peek() == ']' {
			s.i++
			return true
		}
		for {
			if !s.skip() {
				return false
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}
