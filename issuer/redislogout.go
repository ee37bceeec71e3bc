package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// The Redis store's side of logout: who took part in a session, and
// ending a subject's sessions and refresh-token families. Each method is
// one script (see redisscripts.go), so it is atomic across processes.

// JoinSession implements [Store]. The client is a field of the session's
// hash, so it ends with the session; joining again changes nothing.
func (s *RedisStore) JoinSession(ctx context.Context, id, clientID string) error {
	if clientID == "" {
		return errors.New("issuer: join session: empty client ID")
	}
	st, err := s.status(ctx, "join session", redisJoinSession, []string{s.sessionKey(id)},
		redisMs(s.now()), clientID)
	if err == nil && st == "notfound" {
		err = ErrNotFound
	}
	return err
}

// EndSession implements [Store].
func (s *RedisStore) EndSession(ctx context.Context, idHash string) (Session, []string, error) {
	r, err := s.strings(ctx, "end session", redisEndSession, []string{s.key("session", idHash)},
		redisMs(s.now()), idHash)
	switch {
	case err != nil:
		return Session{}, nil, err
	case r[0] == "notfound":
		return Session{}, nil, ErrNotFound
	case len(r) < 2:
		return Session{}, nil, fmt.Errorf("issuer: end session: redis store: reply of %d values, want 2 or more", len(r))
	}
	var sess Session
	if err := json.Unmarshal([]byte(r[1]), &sess); err != nil {
		return Session{}, nil, fmt.Errorf("issuer: end session: redis store: bad value: %w", err)
	}
	return sess, r[2:], nil
}

// SubjectSessions implements [Store].
func (s *RedisStore) SubjectSessions(ctx context.Context, subject string) ([]string, error) {
	if subject == "" {
		return nil, nil // an empty subject is not indexed
	}
	r, err := s.strings(ctx, "list sessions", redisSubjectSessions,
		[]string{s.subjectKey("subject-sessions", subject)}, redisMs(s.now()), s.key("session", ""))
	if err != nil {
		return nil, err
	}
	return r[1:], nil
}

// RevokeSubjectFamilies implements [Store].
func (s *RedisStore) RevokeSubjectFamilies(ctx context.Context, subject string) ([]RevokedFamily, error) {
	if subject == "" {
		return nil, nil // an empty subject is not indexed
	}
	return s.revokeIndexed(ctx, "revoke subject's families", s.subjectKey("subject-families", subject))
}

// RevokeSessionFamilies implements [Store].
func (s *RedisStore) RevokeSessionFamilies(ctx context.Context, idHash string) ([]RevokedFamily, error) {
	if idHash == "" {
		return nil, nil // no family is indexed under no session
	}
	return s.revokeIndexed(ctx, "revoke session's families", s.key("session-families", idHash))
}

// revokeIndexed revokes the families the index under key names and
// decodes the reply {status, then ID, client, subject, session hash of
// each}.
func (s *RedisStore) revokeIndexed(ctx context.Context, op, key string) ([]RevokedFamily, error) {
	r, err := s.strings(ctx, op, redisRevokeIndexed, []string{key}, redisMs(s.now()), s.key("family", ""))
	if err != nil {
		return nil, err
	}
	if (len(r)-1)%4 != 0 {
		return nil, fmt.Errorf("issuer: %s: redis store: reply of %d values, want 1 + 4n", op, len(r))
	}
	var out []RevokedFamily
	for f := r[1:]; len(f) >= 4; f = f[4:] {
		out = append(out, RevokedFamily{ID: f[0], ClientID: f[1], Subject: f[2], SessionHash: f[3]})
	}
	return out, nil
}
