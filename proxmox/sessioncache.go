package proxmox

import (
	"crypto/tls"
	"sync"
)

// sessionCache is an endpoint's TLS client session cache that keeps each
// session serialized (tls.SessionState.Bytes: the ticket, the secret, the
// peer's certificates as DER) instead of as a *tls.ClientSessionState.
// The latter holds the parsed certificate chain (crypto/x509 keeps several
// KiB per certificate) for as long as the session is cached, i.e. for the
// life of an idle poller: about 13 KiB per 3-node remote, most of what an
// idle poller held (docs/benchmarks.md, "Heap per poller"). Get parses the
// session again, once per new connection, which costs microseconds against
// the handshake's round trip.
//
// A session cache is per endpoint, so it sees one key (the server name):
// a short list, not a map (an empty map alone is half a KiB). It keeps at
// most sessionCacheSize sessions all the same, dropping the oldest when
// full. Safe for concurrent use, as tls requires.
type sessionCache struct {
	mu       sync.Mutex
	sessions []cachedSession
}

// cachedSession is a session as tls.ClientSessionState.ResumptionState
// returns it, serialized.
type cachedSession struct {
	key    string
	ticket []byte
	state  []byte
}

func newSessionCache() *sessionCache { return &sessionCache{} }

// find returns the index of key's session, or -1; c.mu is held.
func (c *sessionCache) find(key string) int {
	for i := range c.sessions {
		if c.sessions[i].key == key {
			return i
		}
	}
	return -1
}

// Get implements tls.ClientSessionCache.
func (c *sessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	i := c.find(key)
	var s cachedSession
	if i >= 0 {
		s = c.sessions[i]
	}
	c.mu.Unlock()
	if i < 0 {
		return nil, false
	}
	st, err := tls.ParseSessionState(s.state)
	if err != nil {
		c.Put(key, nil)
		return nil, false
	}
	cs, err := tls.NewResumptionState(s.ticket, st)
	if err != nil {
		c.Put(key, nil)
		return nil, false
	}
	return cs, true
}

// Put implements tls.ClientSessionCache; a nil session removes the key.
func (c *sessionCache) Put(key string, cs *tls.ClientSessionState) {
	var s cachedSession
	if cs != nil {
		ticket, st, err := cs.ResumptionState()
		if err != nil || st == nil {
			return
		}
		state, err := st.Bytes()
		if err != nil {
			return
		}
		// Exact-size copies: the encoder's buffer has room to spare.
		s = cachedSession{key: key, ticket: append([]byte(nil), ticket...), state: append([]byte(nil), state...)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.find(key)
	switch {
	case cs == nil && i >= 0:
		c.sessions = append(c.sessions[:i], c.sessions[i+1:]...)
	case cs == nil:
	case i >= 0:
		c.sessions[i] = s
	default:
		if len(c.sessions) >= sessionCacheSize {
			c.sessions = append(c.sessions[:0], c.sessions[1:]...)
		}
		c.sessions = append(c.sessions, s)
	}
}
