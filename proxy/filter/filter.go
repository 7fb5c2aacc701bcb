// Package filter is corral's content filter: an admin-set list of words and
// phrases, matched case-insensitively against prompts and, chunk by chunk,
// against generated text.
//
// Matching is by substring: a phrase matches wherever its text appears,
// also inside a longer word. Phrases and text are compared rune by rune
// after simple Unicode case folding, so "STRASSE" matches "strasse" and
// "ΣΊΣΥΦΟΣ" matches "σίσυφος", but "ß" does not match "ss". All phrases are
// found in one pass with an Aho–Corasick automaton over the folded UTF-8
// bytes, so hundreds of phrases cost about what one does.
package filter

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPhraseBytes is the longest phrase New accepts.
const MaxPhraseBytes = 256

// maxTable bounds the automaton's transition table (entries of 4 bytes).
const maxTable = 1 << 23

// Filter matches text against a phrase list. It is immutable and safe for
// concurrent use; a nil or empty Filter matches nothing.
type Filter struct {
	phrases []string // as the admin wrote them, trimmed; deduplicated
	// The automaton. A state is the offset of its row in delta:
	// delta[s+class[b]] is the state after byte b in state s. States at or
	// past matchFrom end a phrase (their own or a suffix's):
	// hits[(s-matchFrom)/classes] is its index.
	class     [256]uint16
	classes   int32
	delta     []int32
	matchFrom int32
	hits      []int32
}

// New builds a filter from phrases. Each is trimmed; empty ones are
// skipped, and duplicates (after case folding) count once. A phrase longer
// than MaxPhraseBytes is an error. An empty list gives a filter that
// matches nothing.
func New(phrases []string) (*Filter, error) {
	f := &Filter{}
	var folded []string
	seen := map[string]bool{}
	var errs []error
	for i, p := range phrases {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if len(p) > MaxPhraseBytes {
			errs = append(errs, fmt.Errorf("filter: phrase %d (%q…) is %d bytes; the limit is %d", i+1, prefix(p, 32), len(p), MaxPhraseBytes))
			continue
		}
		k := fold(p)
		if seen[k] {
			continue
		}
		seen[k] = true
		f.phrases = append(f.phrases, p)
		folded = append(folded, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(folded) == 0 {
		return f, nil
	}
	if err := f.build(folded); err != nil {
		return nil, err
	}
	return f, nil
}

// Phrases returns the phrases the filter matches, as given (trimmed).
func (f *Filter) Phrases() []string {
	if f == nil {
		return nil
	}
	return append([]string(nil), f.phrases...)
}

// Len is the number of phrases; 0 means the filter is off.
func (f *Filter) Len() int {
	if f == nil {
		return 0
	}
	return len(f.phrases)
}

// Match reports the first phrase found in text.
func (f *Filter) Match(text string) (phrase string, ok bool) {
	if f.Len() == 0 {
		return "", false
	}
	s := int32(0)
	if m := f.run(&s, text); m >= 0 {
		return f.phrases[m], true
	}
	return "", false
}

// run advances the automaton from *s over text, folding as it goes, and
// returns the index of the first phrase matched, or -1. text must not end
// inside a rune unless that rune is meant to count as invalid.
func (f *Filter) run(s *int32, text string) int32 {
	st, delta, from := *s, f.delta, f.matchFrom
	for i := 0; i < len(text); {
		b := text[i]
		if b < utf8.RuneSelf {
			st = delta[st+int32(f.class[b])] // class folds A–Z onto a–z
			i++
			if st >= from {
				*s = st
				return f.hits[(st-from)/f.classes]
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		var enc [utf8.UTFMax]byte
		k := utf8.EncodeRune(enc[:], foldRune(r))
		for _, c := range enc[:k] {
			st = delta[st+int32(f.class[c])]
			if st >= from {
				*s = st
				return f.hits[(st-from)/f.classes]
			}
		}
	}
	*s = st
	return -1
}

// build makes the automaton of the folded phrases: a trie, then failure
// links in breadth-first order, with every missing transition filled in so
// that matching is one table look-up per byte.
func (f *Filter) build(folded []string) error {
	var used [256]bool
	total := 1
	for _, p := range folded {
		total += len(p)
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	// Class 0 is every byte no phrase contains.
	nc := 1
	for b := range 256 {
		if used[b] {
			f.class[b] = uint16(nc)
			nc++
		}
	}
	for b := 'A'; b <= 'Z'; b++ {
		f.class[b] = f.class[b+'a'-'A']
	}
	if total*nc > maxTable {
		return fmt.Errorf("filter: %d phrases of %d bytes in all are too many for one filter", len(folded), total-1)
	}
	delta := make([]int32, nc, total*nc)
	for i := range delta {
		delta[i] = -1
	}
	own := []int32{-1}
	for idx, p := range folded {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := int32(f.class[p[i]])
			t := delta[s*int32(nc)+c]
			if t < 0 {
				t = int32(len(own))
				own = append(own, -1)
				for range nc {
					delta = append(delta, -1)
				}
				delta[s*int32(nc)+c] = t
			}
			s = t
		}
		if own[s] < 0 {
			own[s] = int32(idx)
		}
	}
	states := len(own)
	fail := make([]int32, states)
	match := make([]int32, states)
	match[0] = -1
	queue := make([]int32, 0, states)
	for c := range nc {
		t := delta[c]
		if t < 0 {
			delta[c] = 0
			continue
		}
		fail[t] = 0
		match[t] = own[t]
		queue = append(queue, t)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		row := int(s) * nc
		frow := int(fail[s]) * nc
		for c := range nc {
			t := delta[row+c]
			if t < 0 {
				delta[row+c] = delta[frow+c]
				continue
			}
			fail[t] = delta[frow+c]
			match[t] = own[t]
			if match[t] < 0 {
				match[t] = match[fail[t]]
			}
			queue = append(queue, t)
		}
	}
	// Number the states that match last, so that run tells a match by one
	// comparison, and name each by its row's offset, saving a multiply.
	id := make([]int32, states)
	quiet := int32(0) // states that match nothing
	for s := range states {
		if match[s] < 0 {
			id[s] = quiet
			quiet++
		}
	}
	f.hits = make([]int32, int32(states)-quiet)
	for s, n := 0, quiet; s < states; s++ {
		if match[s] >= 0 {
			id[s] = n
			f.hits[n-quiet] = match[s]
			n++
		}
	}
	f.classes = int32(nc)
	f.matchFrom = quiet * f.classes
	table := make([]int32, len(delta))
	for s := range states {
		row := int(id[s]) * nc
		for c := range nc {
			table[row+c] = id[delta[s*nc+c]] * f.classes
		}
	}
	f.delta = table
	return nil
}

// foldRune maps a rune to the one all its case variants share: the lower
// case of its upper case, so that "ς", "σ" and "Σ" or "ſ", "s" and "S"
// fold alike. Invalid UTF-8 decodes to U+FFFD and stays so.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(unicode.ToUpper(r))
}

// fold is foldRune over a string, the way run sees it.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
