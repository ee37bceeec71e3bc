package authn

// CacheLen reports how many verified tokens are cached (tests).
func (a *Authenticator) CacheLen() int {
	if a.cache == nil {
		return 0
	}
	return a.cache.len()
}
