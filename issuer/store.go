package issuer

import (
	"context"
	"errors"
	"time"
)

// Store errors. Implementations return them (possibly wrapped) so callers
// can branch with errors.Is.
var (
	// ErrNotFound: no such code, refresh token, session or consent (or it
	// expired).
	ErrNotFound = errors.New("issuer: not found")
	// ErrCodeReused: the authorization code was already redeemed.
	ErrCodeReused = errors.New("issuer: authorization code reused")
	// ErrRefreshReused: a refresh token that was already rotated was
	// presented again; its whole family has been revoked by the store.
	ErrRefreshReused = errors.New("issuer: refresh token reused")
	// ErrRefreshRetry: RotateRefresh found oldHash rotated already, to a
	// token that is unused and carries a Retry still running: a retry of
	// that rotation (see [RefreshStore.RetryRefresh]), nothing revoked.
	ErrRefreshRetry = errors.New("issuer: refresh token rotated moments ago")
	// ErrRevoked: the refresh token's family was revoked.
	ErrRevoked = errors.New("issuer: revoked")
	// ErrUnavailable: the backing store cannot be reached; callers answer
	// 503 and never treat it as success.
	ErrUnavailable = errors.New("issuer: store unavailable")
	// ErrClientLimit: registering one more client would pass the limit of
	// live registered clients.
	ErrClientLimit = errors.New("issuer: registered client limit reached")
	// ErrExists: a client with that ID is registered already.
	ErrExists = errors.New("issuer: already exists")
)

// AuthCode is what an authorization code stands for. It is stored under
// the SHA-256 of the code, never the code itself.
type AuthCode struct {
	ClientID      string
	RedirectURI   string
	Subject       string
	Scopes        []string
	Resources     []string // RFC 8707 resource indicators of the request
	DPoPJKT       string   // RFC 9449 §10: the key the code's redemption must prove
	Nonce         string
	CodeChallenge string // S256 challenge; empty if the client sent none
	AuthTime      time.Time
	SessionID     string
	Expiry        time.Time
	// Issued is filled in by RedeemCode: what the first redemption issued,
	// so a replay can revoke it.
	Issued Issued
}

// Issued records the tokens one grant produced.
type Issued struct {
	// FamilyID is the refresh-token family, empty if no refresh token.
	FamilyID string
	// AccessJTI and AccessExpiry identify the access token.
	AccessJTI    string
	AccessExpiry time.Time
}

// RefreshToken is one opaque refresh token's grant. It is stored under the
// SHA-256 of the token.
type RefreshToken struct {
	FamilyID string
	ClientID string
	Subject  string
	Scopes   []string
	// Resources are the resource indicators (RFC 8707) the grant is for;
	// its access tokens are for all or some of them.
	Resources []string
	// JKT, when set, binds the family to a DPoP key (RFC 9449 §5): a
	// refresh needs a proof of that key.
	JKT       string
	AuthTime  time.Time
	SessionID string
	// Expiry of this token; the family as a whole ends at FamilyExpiry
	// (rotation does not extend it).
	Expiry       time.Time
	FamilyExpiry time.Time
	// Retry, when set on the token a rotation creates, lets the rotated
	// token's holder get this token's pair again (see
	// [RefreshStore.RetryRefresh]). Stores keep it beside the grant.
	Retry *RefreshRetry `json:"-"`
}

// RefreshRetry is what a retry of a rotation hands back: the token
// response, sealed with a key derived from the rotated token, so that a
// copy of the store reveals nothing to whoever does not hold that token.
type RefreshRetry struct {
	// Until ends the retry grace.
	Until time.Time
	// Sealed is the sealed token response.
	Sealed []byte

	of string // the memory store: the hash of the rotated token
}

// Session is a browser's signed-in session at the issuer.
type Session struct {
	Subject  string
	AuthTime time.Time
	Expiry   time.Time
}

// Store keeps the issuer's state: authorization codes, refresh-token
// families, revoked access-token IDs, browser sessions, remembered consent
// and login rate-limit counters, one interface per job. Every method is
// safe for concurrent use, and every operation that decides something
// (redeeming a code, rotating a refresh token) is atomic across all
// processes sharing the store. Expired entries are never returned and are
// eventually removed.
type Store interface {
	CodeStore
	RefreshStore
	RevocationStore
	SessionStore
	ConsentStore
	Counters
	ClientStore
	// Ping reports whether the store is reachable (for /readyz).
	Ping(ctx context.Context) error
}

// CodeStore keeps authorization codes until they are redeemed, once.
type CodeStore interface {
	// SaveCode stores a new authorization code under its hash until
	// c.Expiry.
	SaveCode(ctx context.Context, codeHash string, c AuthCode) error
	// RedeemCode consumes a code exactly once. The first call for a live
	// code records issued with it and returns the code. Every later call
	// returns the code (with the Issued of the first redemption) and
	// ErrCodeReused. Unknown or expired codes give ErrNotFound. A redeemed
	// code is remembered until its Expiry plus ten minutes so replays can
	// be detected.
	RedeemCode(ctx context.Context, codeHash string, issued Issued) (AuthCode, error)
}

// RefreshStore keeps refresh-token families: their current token, what was
// issued from them, and whether they are revoked.
type RefreshStore interface {
	// CreateRefresh stores the first refresh token of a new family.
	CreateRefresh(ctx context.Context, tokenHash string, rt RefreshToken) error
	// RotateRefresh replaces the family's current token oldHash with
	// newHash, atomically. It returns the old token's grant. If oldHash is
	// not the family's current token (it was rotated before), the family is
	// revoked and ErrRefreshReused returned with the grant — unless the
	// current token is the one oldHash was rotated to and its Retry still
	// runs, which gives ErrRefreshRetry and changes nothing; a revoked family
	// gives ErrRevoked; an unknown or expired token ErrNotFound. The new
	// token has next's fields (FamilyID is the old one's). accessJTI and
	// accessExpiry are recorded with the family so that revoking the family
	// also revokes the access tokens issued from it.
	RotateRefresh(ctx context.Context, oldHash, newHash string, next RefreshToken, accessJTI string, accessExpiry time.Time) (RefreshToken, error)
	// RetryRefresh returns the Retry of the token oldHash was rotated to,
	// when that token is still its live family's current one (unused),
	// the family is not revoked and Retry.Until is after now; else
	// ErrNotFound. It changes nothing: a retry that does not qualify goes
	// on to RotateRefresh, whose reuse check revokes the family.
	RetryRefresh(ctx context.Context, oldHash string) (RefreshRetry, error)
	// LookupRefresh returns a live refresh token's grant without changing
	// anything: ErrNotFound, ErrRevoked, or ErrRefreshReused for one
	// already rotated.
	LookupRefresh(ctx context.Context, tokenHash string) (RefreshToken, error)
	// AddFamilyAccess records an access token issued from a family.
	AddFamilyAccess(ctx context.Context, familyID, accessJTI string, accessExpiry time.Time) error
	// RevokeFamily revokes every refresh token of the family and denies
	// every access token recorded with it until its expiry. A family not
	// created yet is remembered as revoked for ten minutes, so a code replay
	// racing the first redemption still wins: CreateRefresh then fails with
	// ErrRevoked, and AddFamilyAccess records the jti (denied) and returns
	// ErrRevoked. Rotation never extends FamilyExpiry. LookupRefresh and
	// RotateRefresh return the grant along with ErrRevoked and
	// ErrRefreshReused.
	RevokeFamily(ctx context.Context, familyID string) error
	// RevokeSubjectFamilies revokes, as RevokeFamily does, every live
	// family whose tokens were issued to subject, atomically, and returns
	// those it revoked (not those revoked before), in no particular order.
	// The store indexes a family under its subject from CreateRefresh until
	// the family's entry ends.
	RevokeSubjectFamilies(ctx context.Context, subject string) ([]RevokedFamily, error)
	// RevokeSessionFamilies is RevokeSubjectFamilies for the families
	// created with a RefreshToken.SessionID whose hash (see
	// [SessionStore.EndSession]) is idHash.
	RevokeSessionFamilies(ctx context.Context, idHash string) ([]RevokedFamily, error)
}

// RevokedFamily is a refresh-token family that
// [RefreshStore.RevokeSubjectFamilies] or
// [RefreshStore.RevokeSessionFamilies] revoked: whose it was, so that its
// client can be told.
type RevokedFamily struct {
	ID       string
	ClientID string
	Subject  string
	// SessionHash is the hash of the issuer session the family was created
	// in (see [SessionStore.EndSession]), empty if none.
	SessionHash string
}

// RevocationStore keeps the IDs of revoked access tokens.
type RevocationStore interface {
	// RevokeAccess denies an access token's jti until expiry.
	RevokeAccess(ctx context.Context, jti string, expiry time.Time) error
	// IsAccessRevoked reports whether jti is denied.
	IsAccessRevoked(ctx context.Context, jti string) (bool, error)
}

// SessionStore keeps browsers' signed-in sessions at the issuer, the
// clients that took part in each, and which sessions each subject has.
//
// A session's ID is the browser's cookie, a bearer secret, so the indexes
// never hold it: they name a session by its ID hash, the SHA-256 of the
// ID in unpadded base64url (RFC 4648 §5). Its first 22 characters are the
// "sid" of the session's id_tokens and logout tokens.
type SessionStore interface {
	// SaveSession stores a browser session until s.Expiry and indexes it
	// under s.Subject. Saving under an existing ID replaces that session
	// and forgets who took part in it.
	SaveSession(ctx context.Context, id string, s Session) error
	// GetSession returns a live session or ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// DeleteSession removes a session; deleting a missing one is not an
	// error.
	DeleteSession(ctx context.Context, id string) error
	// JoinSession records, atomically, that clientID took part in the live
	// session id (it was issued an authorization code in it); the record
	// ends with the session. Joining again is not an error. A session that
	// is not live gives ErrNotFound.
	JoinSession(ctx context.Context, id, clientID string) error
	// EndSession removes the live session whose ID hash is idHash, atomically,
	// and returns it with the clients that took part in it, sorted. A
	// session that is not live gives ErrNotFound, so of two calls racing
	// for one session only one gets it.
	EndSession(ctx context.Context, idHash string) (Session, []string, error)
	// SubjectSessions returns the ID hashes of subject's live sessions, in
	// no particular order.
	SubjectSessions(ctx context.Context, subject string) ([]string, error)
}

// ConsentStore remembers the scopes a user allowed a client.
type ConsentStore interface {
	// SaveConsent remembers that subject allowed client the scopes, until
	// expiry.
	SaveConsent(ctx context.Context, subject, clientID string, scopes []string, expiry time.Time) error
	// GetConsent returns the remembered scopes, or ErrNotFound.
	GetConsent(ctx context.Context, subject, clientID string) ([]string, error)
}

// RegisteredClient is a client registered through dynamic client
// registration (RFC 7591), as the store keeps it. Configured clients are
// never stored.
type RegisteredClient struct {
	ID   string
	Name string // client_name as the client gave it, unverified
	// SecretHash is the SHA-256 of a confidential client's secret, in
	// unpadded base64url; "" for a public client. The secret is 32 random
	// bytes, so a fast hash is enough and the secret itself is never kept.
	SecretHash   string
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
	// ClientURI is the client's home page as it gave it, unverified; "" for
	// none.
	ClientURI string
	// IssuedAt is when it was registered (client_id_issued_at).
	IssuedAt time.Time
}

// ClientStore keeps dynamically registered clients. A client that is
// never used is removed once its unused TTL has passed; one that has been
// used (see UseClient) stays until it is deleted.
type ClientStore interface {
	// RegisterClient stores c under c.ID, atomically refusing it with
	// ErrClientLimit when max is positive and max live registered clients
	// exist, and with ErrExists when c.ID is registered already. Unless
	// UseClient is called for it, the client is removed unusedTTL after
	// registration; unusedTTL <= 0 keeps it until deleted.
	RegisterClient(ctx context.Context, c RegisteredClient, max int, unusedTTL time.Duration) error
	// GetClient returns a live registered client, or ErrNotFound.
	GetClient(ctx context.Context, id string) (RegisteredClient, error)
	// UseClient records that the client was used (it was issued a token):
	// it is no longer removed for being unused. An unknown client gives
	// ErrNotFound. Calling it again is cheap and not an error.
	UseClient(ctx context.Context, id string) error
	// DeleteClient removes a registered client; an unknown one gives
	// ErrNotFound. A deleted client no longer counts against the limit.
	DeleteClient(ctx context.Context, id string) error
}

// Counters count events in fixed windows, for sign-in throttling.
type Counters interface {
	// Hit counts one event under key in a fixed window of the given length
	// starting at its first hit, and returns the count including this one.
	Hit(ctx context.Context, key string, window time.Duration) (int, error)
	// Count returns the events counted under key in its current window (0
	// when there is none), without counting one.
	Count(ctx context.Context, key string) (int, error)
}
