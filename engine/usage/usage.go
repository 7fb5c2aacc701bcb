// Package usage meters the gateway's requests by API key. Before a
// request is forwarded, Reserve counts it and holds back the tokens it may
// use against the key's limits, refusing it with a *LimitError when a
// limit would be passed; when it ends, Settle replaces the hold by the
// tokens the upstream counted and records the request. Records are kept
// in memory and written to the store in batches by Run, so a request
// costs no disk write; Query reports daily totals by key, model, end user
// or day.
//
// Windows. Requests and tokens per minute are counted over a sliding
// window of the last 60 seconds, in one-second buckets: a request counts
// from the second it was reserved in until 60 seconds later. Tokens per
// day and per month are calendar windows in UTC: the day starts at 00:00
// UTC, the month at 00:00 UTC on its first day, and both start from zero
// then. A request's tokens count in the windows of the time it was
// reserved, including when it ends after midnight.
//
// Holds. A request holds the tokens it may use: the maxTokens given to
// Reserve (its max_tokens or num_predict plus, ideally, an estimate of
// its prompt), or DefaultReserve when the request names none. A hold
// larger than a limit is cut to the limit, so such a request still runs
// when nothing else uses the window. Settle replaces the hold by the
// real count, which may be more or less than it; Release drops it, for a
// request that never reached an upstream. Concurrent requests each see
// the others' holds, so together they never hold more than a limit.
//
// Restarts. New loads this month's daily totals from the store, so the
// day and month windows survive a restart; the minute windows start
// empty. A crash loses at most the records of one flush interval.
package usage

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"corral/engine/store"
)

// Limits cap what a key may use; 0 means unlimited. It is the type
// engine/keys keeps its limits in.
type Limits = store.Limits

// LimitSource gives each key's limits; engine/keys.Manager is one. ok is
// false for a key it does not know, which then has no limits.
type LimitSource interface {
	Limits(key string) (l Limits, ok bool)
}

// Record is one request, as Settle records it.
type Record struct {
	Time             time.Time     // when the request began; zero: when it was reserved
	Key              string        // the API key's name; Settle sets it
	User             string        // the end user, from the chat UI's headers; may be empty
	Model            string        // zero: the model given to Reserve
	Instance         string        // the instance that served it
	Route            string        // such as /v1/chat/completions
	PromptTokens     int           // as the upstream counted them
	CompletionTokens int           // as the upstream counted them
	TTFT             time.Duration // time to the first token
	Queued           time.Duration // time waiting in corral's queue for an instance; part of TTFT and Duration
	Duration         time.Duration // time to the last byte
	Status           int           // HTTP status sent to the client
	Outcome          string        // OutcomeOK or empty for success; anything else says why not, and counts as an error
}

// OutcomeOK is the Outcome of a request that completed.
const OutcomeOK = "ok"

// failed reports whether r counts as an error in the totals.
func (r Record) failed() bool {
	return r.Status >= 400 || (r.Outcome != "" && r.Outcome != OutcomeOK)
}

// Defaults of a Meter.
const (
	DefaultReserve       = 4096                 // tokens held by a request that names no maximum
	DefaultFlushInterval = 2 * time.Second      // how often Run writes records
	DefaultRetention     = 400 * 24 * time.Hour // how long daily totals are kept
	DefaultRawRetention  = 30 * 24 * time.Hour  // how long raw records are kept
)

const (
	pruneEvery = time.Hour
	maxBuffer  = 1 << 20 // records held while the store refuses writes
	maxName    = 256     // bytes kept of a model or user name
)

// Meter enforces limits and records usage. It is safe for concurrent use.
type Meter struct {
	st             *store.Store
	limits         LimitSource
	now            func() time.Time
	log            *slog.Logger
	every          time.Duration
	keep, keepRaw  time.Duration
	defaultReserve int64
	maxBuffer      int

	mu       sync.RWMutex
	accounts map[string]*account // by key name

	// flushing is held for writing while a batch moves from buf to the
	// store, and for reading by Query, which so sees each record once.
	flushing sync.RWMutex
	bufMu    sync.Mutex
	buf      []Record
	dropped  int // records dropped because buf was full; under bufMu
}

// Option changes a Meter's defaults.
type Option func(*Meter)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(m *Meter) { m.now = now } }

// WithLogger sets the logger (default: none).
func WithLogger(l *slog.Logger) Option { return func(m *Meter) { m.log = l } }

// WithFlushInterval sets how often Run writes records (default 2s).
func WithFlushInterval(d time.Duration) Option { return func(m *Meter) { m.every = d } }

// WithRetention sets how long daily totals are kept (default 400 days).
// The current month's are always kept: the month window needs them.
func WithRetention(d time.Duration) Option { return func(m *Meter) { m.keep = d } }

// WithRawRetention sets how long raw records are kept (default 30 days).
func WithRawRetention(d time.Duration) Option { return func(m *Meter) { m.keepRaw = d } }

// WithDefaultReserve sets the tokens held by a request that names no
// maximum (default DefaultReserve).
func WithDefaultReserve(tokens int) Option {
	return func(m *Meter) { m.defaultReserve = int64(tokens) }
}

// New makes a Meter over st, with each key's limits from limits (nil: no
// limits), and loads this month's totals so that the day and month
// windows go on where they were.
func New(st *store.Store, limits LimitSource, opts ...Option) (*Meter, error) {
	if st == nil {
		return nil, errors.New("usage: no store")
	}
	m := &Meter{
		st:             st,
		limits:         limits,
		now:            time.Now,
		log:            slog.New(slog.DiscardHandler),
		every:          DefaultFlushInterval,
		keep:           DefaultRetention,
		keepRaw:        DefaultRawRetention,
		defaultReserve: DefaultReserve,
		maxBuffer:      maxBuffer,
		accounts:       map[string]*account{},
	}
	for _, o := range opts {
		o(m)
	}
	var errs []error
	for _, c := range []struct {
		what string
		d    time.Duration
	}{{"flush interval", m.every}, {"retention", m.keep}, {"raw record retention", m.keepRaw}} {
		if c.d <= 0 {
			errs = append(errs, fmt.Errorf("usage: %s %s: must be positive", c.what, c.d))
		}
	}
	if m.defaultReserve <= 0 {
		errs = append(errs, fmt.Errorf("usage: default reserve of %d tokens: must be positive", m.defaultReserve))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	return m, nil
}

// load fills the day and month windows from the stored totals.
func (m *Meter) load() error {
	now := m.now().UTC()
	day, month := dayOf(now), monthOf(now)
	today := now.Format(time.DateOnly)
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	err := m.st.UsageDays(first, today, func(d store.UsageDay) error {
		a := m.accounts[d.Key]
		if a == nil {
			a = &account{day: period{id: day}, month: period{id: month}}
			m.accounts[d.Key] = a
		}
		tokens := d.PromptTokens + d.CompletionTokens
		a.month.tokens += tokens
		if d.Day == today {
			a.day.tokens += tokens
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("usage: load this month's totals: %w", err)
	}
	return nil
}

// account is the windows of one key.
func (m *Meter) account(key string) *account {
	m.mu.RLock()
	a := m.accounts[key]
	m.mu.RUnlock()
	if a != nil {
		return a
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a = m.accounts[key]; a == nil {
		a = &account{}
		m.accounts[key] = a
	}
	return a
}

// add puts rec in the buffer that Run writes.
func (m *Meter) add(rec Record) {
	rec.Key = cleanName(rec.Key)
	rec.Model = cleanName(rec.Model)
	rec.User = cleanName(rec.User)
	m.bufMu.Lock()
	if len(m.buf) >= m.maxBuffer {
		m.dropped++
	} else {
		m.buf = append(m.buf, rec)
	}
	m.bufMu.Unlock()
}

// cleanName keeps a name within maxName bytes and without NUL bytes,
// which the store's keys use as separators.
func cleanName(s string) string {
	if len(s) <= maxName && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) > maxName {
		s = strings.ToValidUTF8(s[:maxName], "")
	}
	return s
}
