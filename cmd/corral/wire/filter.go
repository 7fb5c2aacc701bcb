package wire

import (
	"context"
	"errors"
	"sync/atomic"

	"corral/engine/store"
	"corral/proxy/filter"
	"corral/proxy/gateway"
)

// filterSetting is where the admin's phrase list is stored.
const filterSetting = "filter_phrases"

// ContentFilter is the admin-set phrase list, swappable at run time; an
// empty list is off and costs the gateway one pointer load.
type ContentFilter struct {
	st  *store.Store
	cur atomic.Pointer[filter.Filter]
}

var _ gateway.Filter = (*ContentFilter)(nil)

// NewContentFilter loads the stored phrase list.
func NewContentFilter(st *store.Store) (*ContentFilter, error) {
	cf := &ContentFilter{st: st}
	var phrases []string
	if err := st.Setting(filterSetting, &phrases); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	f, err := filter.New(phrases)
	if err != nil {
		return nil, err
	}
	cf.cur.Store(f)
	return cf, nil
}

// Phrases lists the current phrases.
func (cf *ContentFilter) Phrases() []string { return cf.cur.Load().Phrases() }

// SetPhrases replaces the list (empty turns the filter off); a bad list
// changes nothing.
func (cf *ContentFilter) SetPhrases(_ context.Context, phrases []string) error {
	f, err := filter.New(phrases)
	if err != nil {
		return err
	}
	if err := cf.st.PutSettings(map[string]any{filterSetting: f.Phrases()}); err != nil {
		return err
	}
	cf.cur.Store(f)
	return nil
}

func (cf *ContentFilter) Prompt(route string, body []byte) (string, bool) {
	f := cf.cur.Load()
	if f.Len() == 0 {
		return "", false
	}
	return f.Match(filter.PromptText(route, body))
}

func (cf *ContentFilter) NewStream() gateway.StreamFilter {
	f := cf.cur.Load()
	if f.Len() == 0 {
		return nil
	}
	return streamFilter{f.NewStream()}
}

type streamFilter struct{ s *filter.Stream }

func (s streamFilter) Feed(sse bool, frame []byte) (string, bool) { return s.s.FeedDelta(sse, frame) }
