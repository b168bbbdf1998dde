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
// A session cache is per endpoint, so it sees one key (the server name);
// it keeps at most sessionCacheSize sessions all the same, dropping an
// arbitrary one when full. Safe for concurrent use, as tls requires.
type sessionCache struct {
	mu       sync.Mutex
	sessions map[string]cachedSession
}

// cachedSession is a session as tls.ClientSessionState.ResumptionState
// returns it, serialized.
type cachedSession struct {
	ticket []byte
	state  []byte
}

func newSessionCache() *sessionCache {
	return &sessionCache{sessions: make(map[string]cachedSession, 1)}
}

// Get implements tls.ClientSessionCache.
func (c *sessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	s, ok := c.sessions[key]
	c.mu.Unlock()
	if !ok {
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
		s = cachedSession{ticket: append([]byte(nil), ticket...), state: state}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs == nil {
		delete(c.sessions, key)
		return
	}
	if _, ok := c.sessions[key]; !ok && len(c.sessions) >= sessionCacheSize {
		for k := range c.sessions {
			delete(c.sessions, k)
			break
		}
	}
	c.sessions[key] = s
}
