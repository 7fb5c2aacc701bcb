package filter

import (
	"bytes"
	"unicode/utf8"
)

// Stream matches text that arrives in pieces: a phrase split across Feed
// calls is found when its last piece arrives, without scanning anything
// twice (a rune split across pieces is put together first). A Stream
// belongs to one response and is not safe for concurrent use.
type Stream struct {
	f     *Filter
	state int32
	hit   int32             // 1 + the phrase matched; once set, every Feed reports it
	carry [utf8.UTFMax]byte // the start of a rune split across Feeds
	nc    int
	buf   []byte // FeedDelta's text
	// tail is an unfinished line FeedDelta waits to see the end of;
	// skipping, that the line was too long and is being passed over.
	tail     []byte
	skipping bool
}

// NewStream starts matching one stream of text.
func (f *Filter) NewStream() *Stream {
	return &Stream{f: f}
}

// Feed matches the next piece of text and reports the first phrase that
// ends in it. A stream that matched is done: the rest of that piece is not
// scanned and every later Feed reports the same phrase.
func (s *Stream) Feed(text string) (phrase string, ok bool) {
	if s.hit > 0 {
		return s.f.phrases[s.hit-1], true
	}
	if s.f.Len() == 0 || text == "" {
		return "", false
	}
	if s.nc > 0 {
		// Complete the rune the last piece ended inside.
		var tmp [2 * utf8.UTFMax]byte
		n := copy(tmp[:], s.carry[:s.nc])
		n += copy(tmp[n:], text[:min(len(text), utf8.UTFMax)])
		if !utf8.FullRune(tmp[:n]) {
			// Still not whole: text is a few bytes of the same rune.
			s.nc = copy(s.carry[:], tmp[:n])
			return "", false
		}
		// Run the runes that start in the carry; text resumes after them.
		pos := 0
		for pos < s.nc {
			_, size := utf8.DecodeRune(tmp[pos:n])
			pos += size
		}
		head := string(tmp[:pos]) // at most 2 runes: does not escape
		consumed := pos - s.nc
		s.nc = 0
		if m := s.f.run(&s.state, head); m >= 0 {
			return s.matched(m)
		}
		text = text[consumed:]
	}
	body := s.keep(text)
	if m := s.f.run(&s.state, body); m >= 0 {
		return s.matched(m)
	}
	return "", false
}

func (s *Stream) matched(m int32) (string, bool) {
	s.hit = m + 1
	return s.f.phrases[m], true
}

// keep stores a rune text ends inside in the carry and returns the rest.
func (s *Stream) keep(text string) string {
	// The last rune starts at most UTFMax-1 continuation bytes back.
	i := len(text) - 1
	for j := 1; i >= 0 && j < utf8.UTFMax && !utf8.RuneStart(text[i]); j++ {
		i--
	}
	if i < 0 || utf8.FullRuneInString(text[i:]) {
		return text
	}
	s.nc = copy(s.carry[:], text[i:])
	return text[:i]
}

// maxLine is the longest line FeedDelta holds while waiting for its end;
// the text of a longer one is not matched. (Ollama's last line carries
// the context, some tens of kilobytes.)
const maxLine = 1 << 20

// FeedDelta matches the generated text in bytes read from a streamed
// answer: with sse an OpenAI SSE stream, else an Ollama NDJSON one (see
// DeltaText). The bytes may be cut anywhere: the Stream keeps an
// unfinished last line and matches its text with the read that ends it.
// End matches what is left when the stream ends.
func (s *Stream) FeedDelta(sse bool, chunk []byte) (phrase string, ok bool) {
	if s.hit > 0 {
		return s.f.phrases[s.hit-1], true
	}
	if s.f.Len() == 0 {
		return "", false
	}
	s.buf = s.buf[:0]
	if len(s.tail) > 0 || s.skipping {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			s.hold(chunk)
			return "", false
		}
		if !s.skipping {
			s.tail = append(s.tail, chunk[:i]...)
			s.buf = appendLineText(s.buf, sse, s.tail)
		}
		s.tail, s.skipping = s.tail[:0], false
		chunk = chunk[i+1:]
	}
	end := bytes.LastIndexByte(chunk, '\n') + 1
	s.buf = AppendDeltaText(s.buf, sse, chunk[:end])
	s.hold(chunk[end:])
	if len(s.buf) == 0 {
		return "", false
	}
	return s.Feed(unsafeString(s.buf))
}

// End matches what is left when the stream ends: the text of a last line
// that did not end in a newline, and the bytes of a rune cut short (as
// invalid UTF-8, the way Match sees them).
func (s *Stream) End(sse bool) (phrase string, ok bool) {
	if s.hit > 0 {
		return s.f.phrases[s.hit-1], true
	}
	if s.f.Len() == 0 {
		return "", false
	}
	if len(s.tail) > 0 && !s.skipping {
		s.buf = appendLineText(s.buf[:0], sse, s.tail)
		s.tail = s.tail[:0]
		if len(s.buf) > 0 {
			if p, ok := s.Feed(unsafeString(s.buf)); ok {
				return p, ok
			}
		}
	}
	if s.nc > 0 {
		var c [utf8.UTFMax]byte
		n := copy(c[:], s.carry[:s.nc])
		s.nc = 0
		if m := s.f.run(&s.state, string(c[:n])); m >= 0 {
			return s.matched(m)
		}
	}
	return "", false
}

// hold keeps p, the start of a line, for the next FeedDelta.
func (s *Stream) hold(p []byte) {
	if s.skipping || len(p) == 0 {
		return
	}
	if len(s.tail)+len(p) > maxLine {
		s.tail, s.skipping = s.tail[:0], true
		return
	}
	s.tail = append(s.tail, p...)
}
