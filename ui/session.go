package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// session is one signed-in browser.
type session struct {
	csrf    string // sent back by the page's script and forms on every change
	expires time.Time
}

// sessions lives in memory only: a restart of corral signs everyone out,
// which is the price of not keeping a credential on disk.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[[sha256.Size]byte]session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: map[[sha256.Size]byte]session{}}
}

// key hashes the cookie value, so the map lookup takes no time that
// depends on how much of a guessed ID is right.
func key(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// create starts a session and returns the cookie value for it.
func (s *sessions) create() (id string, sess session, err error) {
	id, err = randomToken()
	if err != nil {
		return "", session{}, fmt.Errorf("session id: %w", err)
	}
	csrf, err := randomToken()
	if err != nil {
		return "", session{}, fmt.Errorf("session csrf token: %w", err)
	}
	now := s.now()
	sess = session{csrf: csrf, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byID { // few admins: a sweep per sign-in is cheap
		if !now.Before(v.expires) {
			delete(s.byID, k)
		}
	}
	s.byID[key(id)] = sess
	return id, sess, nil
}

// get returns the live session for a cookie value.
func (s *sessions) get(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	k := key(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[k]
	if !ok {
		return session{}, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.byID, k)
		return session{}, false
	}
	return sess, true
}

// clear ends every session and says how many there were.
func (s *sessions) clear() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.byID)
	clear(s.byID)
	return n
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.byID, key(id))
	s.mu.Unlock()
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
