// A DPoP client (RFC 9449) made of oauth4webapi, for portcullis' tests.
//
// node client.mjs '{"alg":"ES256"}'
//
// It holds one DPoP key pair (generated with oauth4webapi's
// generateKeyPair) and oauth4webapi's DPoP handle, which caches the server
// nonces per origin, for as long as it runs. It reads one JSON operation
// per line on stdin and answers each with one JSON line on stdout:
// {"ok": {...}} or {"error": "..."}. Every HTTP request oauth4webapi sends
// is recorded (its method, URL, Authorization scheme, DPoP proof, and the
// answer's status, DPoP-Nonce and WWW-Authenticate) and returned with the
// operation that sent it, under "sent".
//
// Operations ("op"):
//   discover {issuer}                     RFC 8414 discovery of issuer
//   clientCredentials {clientId, clientSecret, scope, resource}
//   authorizationURL {clientId, redirectUri, scope, resource, dpopJkt}
//   exchange {callbackUrl}                the code of the last authorizationURL
//   refresh {resource}
//   call {method, url, body}              a protected resource request
//   proof {method, url, accessToken, variant}
//                                         a proof made by oauth4webapi and not
//                                         sent: variant "" (this client's),
//                                         "otherKey", "stale" (iat 5 minutes
//                                         back, oauth4webapi's clockSkew),
//                                         "noAth"
//
// Token requests and calls are retried once when the answer is
// use_dpop_nonce, as oauth4webapi's documentation shows (isDPoPNonceError).
import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'

const cfg = JSON.parse(process.argv[2] || '{}')
const alg = cfg.alg || 'ES256'

let sent = []
const lastNonce = new Map() // origin -> the last DPoP-Nonce seen

function record(url, init, res) {
  const h = new Headers(init?.headers)
  const authz = h.get('authorization') || ''
  const nonce = res.headers.get('dpop-nonce')
  if (nonce) lastNonce.set(new URL(url).origin, nonce)
  sent.push({
    method: init?.method || 'GET',
    url: String(url),
    scheme: authz.split(' ')[0],
    dpop: h.get('dpop') || '',
    status: res.status,
    dpopNonce: nonce || '',
    wwwAuthenticate: res.headers.get('www-authenticate') || '',
  })
}

async function recordingFetch(url, init) {
  const res = await fetch(url, init)
  record(url, init, res)
  return res
}

const opts = {
  [oauth.allowInsecureRequests]: true, // loopback http in tests
  [oauth.customFetch]: recordingFetch,
}

const keyPair = await oauth.generateKeyPair(alg, { extractable: false })
const otherKeyPair = await oauth.generateKeyPair(alg, { extractable: false })
let client = { client_id: '' }
let dpop = oauth.DPoP(client, keyPair)
let as
let clientAuth = oauth.None()
let pending // the authorization request awaiting its code
let tokens = {}

async function withNonceRetry(send, process) {
  try {
    return await process(await send())
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    return await process(await send())
  }
}

function tokenResult(t) {
  tokens = t
  return {
    accessToken: t.access_token,
    tokenType: t.token_type,
    refreshToken: t.refresh_token || '',
    expiresIn: t.expires_in ?? 0,
  }
}

function setClient(id, secret) {
  if (client.client_id === id) return
  client = { client_id: id }
  clientAuth = secret ? oauth.ClientSecretBasic(secret) : oauth.None()
  // The handle keeps its key; a new one for a new client would drop the
  // nonce cache, which is per origin, not per client.
}

const ops = {
  async discover({ issuer }) {
    const u = new URL(issuer)
    as = await oauth.processDiscoveryResponse(u, await oauth.discoveryRequest(u, { ...opts, algorithm: 'oauth2' }))
    return { metadata: as }
  },

  async clientCredentials({ clientId, clientSecret, scope, resource }) {
    setClient(clientId, clientSecret)
    const params = new URLSearchParams()
    if (scope) params.set('scope', scope)
    if (resource) params.set('resource', resource)
    const t = await withNonceRetry(
      () => oauth.clientCredentialsGrantRequest(as, client, clientAuth, params, { ...opts, DPoP: dpop }),
      (r) => oauth.processClientCredentialsResponse(as, client, r),
    )
    return tokenResult(t)
  },

  async authorizationURL({ clientId, clientSecret, redirectUri, scope, resource, dpopJkt }) {
    setClient(clientId, clientSecret)
    const verifier = oauth.generateRandomCodeVerifier()
    const state = oauth.generateRandomState()
    const u = new URL(as.authorization_endpoint)
    u.searchParams.set('client_id', clientId)
    u.searchParams.set('redirect_uri', redirectUri)
    u.searchParams.set('response_type', 'code')
    u.searchParams.set('scope', scope)
    u.searchParams.set('state', state)
    u.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
    u.searchParams.set('code_challenge_method', 'S256')
    if (resource) u.searchParams.set('resource', resource)
    if (dpopJkt) u.searchParams.set('dpop_jkt', await dpop.calculateThumbprint())
    pending = { verifier, state, redirectUri }
    return { url: u.href }
  },

  async exchange({ callbackUrl }) {
    if (!pending) throw new Error('exchange without an authorizationURL')
    const p = pending
    pending = undefined
    const params = oauth.validateAuthResponse(as, client, new URL(callbackUrl), p.state)
    const t = await withNonceRetry(
      () => oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, p.redirectUri, p.verifier, { ...opts, DPoP: dpop }),
      (r) => oauth.processAuthorizationCodeResponse(as, client, r),
    )
    const out = tokenResult(t)
    const claims = oauth.getValidatedIdTokenClaims(t)
    out.idTokenSub = claims?.sub || ''
    return out
  },

  async refresh({ resource }) {
    if (!tokens.refresh_token) throw new Error('no refresh token')
    const additionalParameters = resource ? { resource } : undefined
    const t = await withNonceRetry(
      () => oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, { ...opts, DPoP: dpop, additionalParameters }),
      (r) => oauth.processRefreshTokenResponse(as, client, r),
    )
    return tokenResult(t)
  },

  async call({ method, url, body }) {
    const send = () => oauth.protectedResourceRequest(tokens.access_token, method, new URL(url), new Headers(), body || undefined, { ...opts, DPoP: dpop })
    let res
    try {
      res = await withNonceRetry(send, (r) => r)
    } catch (err) {
      if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err
      res = err.response
    }
    return { status: res.status, body: await res.text() }
  },

  async proof({ method, url, accessToken, variant }) {
    const u = new URL(url)
    const withNonce = (_header, payload) => {
      if (lastNonce.has(u.origin)) payload.nonce = lastNonce.get(u.origin)
    }
    let handle
    switch (variant || '') {
      case '':
        handle = dpop
        break
      case 'otherKey':
        handle = oauth.DPoP(client, otherKeyPair, { [oauth.modifyAssertion]: withNonce })
        break
      case 'stale':
        handle = oauth.DPoP({ ...client, [oauth.clockSkew]: -300 }, keyPair, { [oauth.modifyAssertion]: withNonce })
        break
      case 'noAth':
        handle = oauth.DPoP(client, keyPair, {
          [oauth.modifyAssertion]: (h, p) => {
            withNonce(h, p)
            delete p.ath
          },
        })
        break
      default:
        throw new Error(`unknown proof variant ${variant}`)
    }
    let proof = ''
    const capture = async (_url, init) => {
      proof = new Headers(init.headers).get('dpop')
      return new Response(null, { status: 204 })
    }
    await oauth.protectedResourceRequest(accessToken || tokens.access_token, method, u, new Headers(), undefined, {
      ...opts,
      DPoP: handle,
      [oauth.customFetch]: capture,
    })
    return { proof }
  },

  async jkt() {
    return { jkt: await dpop.calculateThumbprint() }
  },
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
console.log(JSON.stringify({ ready: alg }))
for await (const line of rl) {
  if (!line.trim()) continue
  sent = []
  let msg
  try {
    msg = JSON.parse(line)
    const op = ops[msg.op]
    if (!op) throw new Error(`unknown op ${msg.op}`)
    const ok = await op(msg)
    console.log(JSON.stringify({ ok, sent }))
  } catch (err) {
    const detail = err?.cause && typeof err.cause === 'object' && !Array.isArray(err.cause) ? JSON.stringify(err.cause) : ''
    console.log(JSON.stringify({ error: `${err?.name}: ${err?.message}${detail ? ' ' + detail : ''}`, code: err?.code || '', oauthError: err?.error || '', sent }))
  }
}
