package filter

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustNew(t testing.TB, phrases ...string) *Filter {
	t.Helper()
	f, err := New(phrases)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNew(t *testing.T) {
	f := mustNew(t, "  Bad Word ", "", "   ", "bad word", "BAD WORD", "other")
	if got := f.Phrases(); len(got) != 2 || got[0] != "Bad Word" || got[1] != "other" {
		t.Errorf("phrases = %q, want [Bad Word other]", got)
	}

	_, err := New([]string{"fine", strings.Repeat("x", MaxPhraseBytes+1), strings.Repeat("é", 200)})
	if err == nil {
		t.Fatal("phrases over 256 bytes accepted")
	}
	for _, want := range []string{"phrase 2", "phrase 3", "257 bytes", "400 bytes", "limit is 256"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := New([]string{strings.Repeat("y", MaxPhraseBytes)}); err != nil {
		t.Errorf("a phrase of exactly %d bytes: %v", MaxPhraseBytes, err)
	}
}

func TestEmpty(t *testing.T) {
	var nilFilter *Filter
	for name, f := range map[string]*Filter{"nil": nilFilter, "none": mustNew(t), "blank": mustNew(t, " ", "")} {
		t.Run(name, func(t *testing.T) {
			if f.Len() != 0 {
				t.Errorf("Len = %d", f.Len())
			}
			if _, ok := f.Match("anything at all"); ok {
				t.Error("empty filter matched")
			}
			s := f.NewStream()
			if _, ok := s.Feed("anything"); ok {
				t.Error("empty stream matched")
			}
			if _, ok := s.FeedDelta(true, []byte(`data: {"choices":[{"delta":{"content":"x"}}]}`+"\n")); ok {
				t.Error("empty stream matched a delta")
			}
		})
	}
}

func TestMatch(t *testing.T) {
	phrases := []string{"bad word", "Ärger", "foo", "foobar", "barbaz", "bcd", "abcde", "σίσυφος", "日本語", "kelvin"}
	f := mustNew(t, phrases...)
	for _, c := range []struct {
		text, want string
	}{
		{"this has a BAD WORD in it", "bad word"},
		{"Bad Word", "bad word"},
		{"bad  word", ""}, // two spaces: not the phrase
		{"badword", ""},
		{"so much ärger", "Ärger"},
		{"SO MUCH ÄRGER", "Ärger"},
		{"ΣΊΣΥΦΟΣ rolls", "σίσυφος"}, // capital sigma folds with the final ς
		{"σίσυφοσ", "σίσυφος"},
		{"I speak 日本語", "日本語"},
		{"\u212Aelvin", "kelvin"}, // KELVIN SIGN
		{"KELVIN", "kelvin"},
		{"food", "foo"},   // a prefix of another phrase ends first
		{"foobar", "foo"}, // foo ends before foobar
		{"fobar", ""},
		{"xbarbaz", "barbaz"},
		{"abcde", "bcd"}, // overlapping: bcd ends before abcde
		{"abcd", "bcd"},
		{"ab cde", ""},
		{"", ""},
		{"nothing here", ""},
		{"invalid \xff utf8 foo", "foo"},
	} {
		got, ok := f.Match(c.text)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", c.text, got, ok, c.want)
		}
	}
}

func TestSuffixOfLongerPhrase(t *testing.T) {
	// "abcx" must find "bc" through the failure link after "abc" fails.
	f := mustNew(t, "abcd", "bc")
	if got, ok := f.Match("abcx"); !ok || got != "bc" {
		t.Errorf("Match = %q, %v; want bc", got, ok)
	}
	f = mustNew(t, "abcd", "bcx")
	if got, ok := f.Match("zabcx"); !ok || got != "bcx" {
		t.Errorf("Match = %q, %v; want bcx", got, ok)
	}
}

func TestStreamSplit(t *testing.T) {
	f := mustNew(t, "forbidden phrase", "Ärger", "日本語", "bc")
	for _, c := range []struct {
		name   string
		chunks []string
		want   string
		at     int // index of the chunk that completes the match
	}{
		{"whole", []string{"a forbidden phrase"}, "forbidden phrase", 0},
		{"two", []string{"a forbid", "den phrase!"}, "forbidden phrase", 1},
		{"three", []string{"a FORB", "IDDEN PH", "RASE"}, "forbidden phrase", 2},
		{"byte by byte", strings.Split("forbidden phrase", ""), "forbidden phrase", 15},
		{"split in a rune", []string{"so much \xc3", "\x84rger"}, "Ärger", 1},
		{"split in a rune, 3 parts", []string{"\xe6\x97", "\xa5", "本語"}, "日本語", 2},
		{"rune split byte by byte", []string{"\xe6", "\x97", "\xa5\xe6\x9c", "\xac\xe8\xaa", "\x9e"}, "日本語", 4},
		{"empty pieces", []string{"forbidden ", "", "phrase"}, "forbidden phrase", 2},
		{"no match", []string{"forbidden", " ", "phras", "ing"}, "", -1},
		{"short", []string{"b", "c"}, "bc", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := f.NewStream()
			at := -1
			var got string
			for i, ch := range c.chunks {
				if p, ok := s.Feed(ch); ok && at < 0 {
					at, got = i, p
				}
			}
			if got != c.want || at != c.at {
				t.Errorf("matched %q at chunk %d, want %q at %d", got, at, c.want, c.at)
			}
		})
	}
}

func TestStreamStaysMatched(t *testing.T) {
	s := mustNew(t, "bad").NewStream()
	if _, ok := s.Feed("so bad"); !ok {
		t.Fatal("no match")
	}
	if p, ok := s.Feed("fine"); !ok || p != "bad" {
		t.Errorf("after a match Feed = %q, %v", p, ok)
	}
}

// TestStreamEqualsMatch cuts random texts at random places: the stream
// must match exactly when the whole text matches, as a plain substring
// search of the folded text says.
func TestStreamEqualsMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "A", "B", "é", "É", "ß", "σ", "ς", "Σ", "日", "\xff", "\xe6\x97", " "}
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 3000 {
		var phrases []string
		for range 1 + rng.IntN(4) {
			phrases = append(phrases, word(1+rng.IntN(3)))
		}
		f, err := New(phrases)
		if err != nil {
			t.Fatal(err)
		}
		text := word(rng.IntN(12))
		checkSplits(t, f, text, rng)
	}
}

func checkSplits(t *testing.T, f *Filter, text string, rng *rand.Rand) {
	t.Helper()
	want := false
	for _, p := range f.Phrases() {
		if strings.Contains(fold(text), fold(strings.TrimSpace(p))) {
			want = true
		}
	}
	phrase, ok := f.Match(text)
	if ok != want {
		t.Fatalf("Match(%q) with %q = %v, want %v", text, f.Phrases(), ok, want)
	}
	s := f.NewStream()
	sp, sok := "", false
	for rest := text; ; {
		n := 0
		if len(rest) > 0 {
			n = rng.IntN(len(rest) + 1)
		}
		if p, o := s.Feed(rest[:n]); o && !sok {
			sp, sok = p, true
		}
		rest = rest[n:]
		if rest == "" {
			break
		}
	}
	if p, o := s.End(false); o && !sok {
		sp, sok = p, true
	}
	if sok != ok || sp != phrase {
		t.Fatalf("stream over %q with %q = %q, %v; Match = %q, %v", text, f.Phrases(), sp, sok, phrase, ok)
	}
}

func FuzzFeed(f *testing.F) {
	f.Add("forbidden", "a FORBIDDEN word", uint64(1))
	f.Add("日本語", "\xe6\x97\xa5本語", uint64(7))
	f.Add("ς", "ΣΣσ\xce", uint64(3))
	f.Fuzz(func(t *testing.T, phrase, text string, seed uint64) {
		flt, err := New([]string{phrase})
		if err != nil {
			return
		}
		checkSplits(t, flt, text, rand.New(rand.NewPCG(seed, 0)))
	})
}

func TestTooLarge(t *testing.T) {
	// 2000 random phrases of 256 bytes: half a megabyte of states.
	var phrases []string
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, MaxPhraseBytes)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		phrases = append(phrases, string(b))
	}
	_, err := New(phrases)
	if err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("err = %v, want too many", err)
	}
}

// benchPhrases makes n phrases of words that do not occur in benchText.
func benchPhrases(n int) []string {
	rng := rand.New(rand.NewPCG(5, 6))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for w := range 1 + rng.IntN(2) {
			if w > 0 {
				b.WriteByte(' ')
			}
			for range 4 + rng.IntN(8) {
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
			b.WriteByte('q')
		}
		out[i] = b.String()
	}
	return out
}

const benchText = `The quick brown fox jumps over the lazy dog. Large language models generate text one token at a time; ` +
	`a gateway in front of them passes each chunk through as it arrives, and a filter must keep up with it. Émile répond: «très bien».`

func chunks64() []string {
	var out []string
	for s := benchText; s != ""; {
		n := min(64, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

func BenchmarkFeed64(b *testing.B) {
	f := mustNew(b, benchPhrases(200)...)
	cs := chunks64()
	s := f.NewStream()
	b.ReportAllocs()
	b.SetBytes(64)
	i := 0
	for b.Loop() {
		if _, ok := s.Feed(cs[i%len(cs)]); ok {
			b.Fatal("matched")
		}
		i++
	}
}

func BenchmarkMatchPrompt(b *testing.B) {
	f := mustNew(b, benchPhrases(200)...)
	text := strings.Repeat(benchText, 16) // ~4 KiB
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, ok := f.Match(text); ok {
			b.Fatal("matched")
		}
	}
}

func BenchmarkFeedDeltaSSE(b *testing.B) {
	f := mustNew(b, benchPhrases(200)...)
	var chunks [][]byte
	for _, c := range chunks64() {
		chunks = append(chunks, fmt.Appendf(nil, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", c))
	}
	s := f.NewStream()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := s.FeedDelta(true, chunks[i%len(chunks)]); ok {
			b.Fatal("matched")
		}
		i++
	}
}

func BenchmarkNew200(b *testing.B) {
	ps := benchPhrases(200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(ps); err != nil {
			b.Fatal(err)
		}
	}
}
