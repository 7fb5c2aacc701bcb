package gateway

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanModelRequest reads modelRequest's fields from a body that json.Valid
// accepted, without reflection: every request pays for this parse, and
// the fields are few. ok is false wherever it would have to guess how
// encoding/json treats the input (a key in another case or with escapes,
// an escaped string or one with invalid UTF-8, a number that is not a plain int, a value of an
// unexpected type); the caller then decodes the body properly, so both
// paths agree by construction.
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
var requestKeys = []string{"model", "name", "user", "stream", "max_tokens", "max_completion_tokens", "options", "stream_options"}

// scanner walks valid JSON; its methods return false on what it leaves to
// encoding/json.
type scanner struct {
	b []byte
	i int
}

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
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		key, esc := s.rawString()
		if esc || !utf8.Valid(key) {
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

// rawString consumes a string and returns its bytes between the quotes;
// esc says it holds escapes (and the bytes are not its value).
func (s *scanner) rawString() (raw []byte, esc bool) {
	start := s.i + 1
	j := start
	for {
		k := bytes.IndexAny(s.b[j:], `"\`)
		if k < 0 { // cannot happen in valid JSON
			s.i = len(s.b)
			return nil, true
		}
		j += k
		if s.b[j] == '"' {
			s.i = j + 1
			return s.b[start:j], esc
		}
		esc = true
		j += 2 // the backslash and the byte it escapes; \uXXXX's digits are plain
	}
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' {
		s.i += len("null")
		return true
	}
	return false
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
	raw, esc := s.rawString()
	if esc || !utf8.Valid(raw) { // encoding/json replaces bad bytes
		return false
	}
	*dst = string(raw)
	return true
}

func (s *scanner) boolean(dst *bool) bool {
	switch {
	case s.null():
		return true
	case bytes.HasPrefix(s.b[s.i:], []byte("true")):
		*dst = true
		s.i += len("true")
	case bytes.HasPrefix(s.b[s.i:], []byte("false")):
		*dst = false
		s.i += len("false")
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
	for s.i < len(s.b) && (s.b[s.i] == '-' || (s.b[s.i] >= '0' && s.b[s.i] <= '9')) {
		s.i++
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return false
	}
	n, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil {
		return false
	}
	*dst = &n
	return true
}

// skip consumes any value.
func (s *scanner) skip() bool {
	switch c := s.peek(); {
	case c == '"':
		s.rawString()
	case c == '{' || c == '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.rawString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				return true
			}
		}
		return false
	case c == 't':
		s.i += len("true")
	case c == 'f':
		s.i += len("false")
	case c == 'n':
		s.i += len("null")
	default: // a number
		for s.i < len(s.b) && strings.IndexByte("+-0123456789.eE", s.b[s.i]) >= 0 {
			s.i++
		}
	}
	return true
}
