// An OpenID provider for portcullis' tests: oidc-provider with its built-in
// login and consent pages (any login name, any password), RP-initiated
// logout and back-channel logout, on plain http on 127.0.0.1.
//
// Usage: node server.mjs '<config JSON>'   (or the JSON in NODEIDP_CONFIG)
//
//   {
//     "issuer": "http://127.0.0.1:PORT",
//     "port": PORT,
//     "clients": [{
//       "client_id": "...", "client_secret": "...",
//       "redirect_uris": ["..."], "post_logout_redirect_uris": ["..."],
//       "backchannel_logout_uri": "...",
//       "backchannel_logout_session_required": true,
//       "grant_types": ["client_credentials"]
//     }],
//     "resource_scope": "api:read api:write"
//   }
//
// Every client is a confidential client with client_secret_basic at the
// token endpoint: by default a web client with grant types
// authorization_code and refresh_token and response type code; a client
// with grant_types has those, and response type code only when they hold
// authorization_code (a machine client: ["client_credentials"]). The
// account of login name L has sub L and email L (L@example.test when L has
// no "@").
//
// DPoP (RFC 9449, no nonce required), client_credentials and resource
// indicators (RFC 8707) are on: a token request with resource=R (any
// absolute URI) gets a JWT access token (RS256, typ at+jwt) with audience
// R and the requested scopes among resource_scope (default
// "api:read api:write"); a DPoP proof at the token endpoint binds it
// (cnf.jkt, token_type DPoP). Without resource, access tokens stay opaque.
//
// It prints "nodeidp: ready <issuer>" once it listens, and logs every
// back-channel logout it sends and every error to stdout and stderr.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const raw = process.argv[2] ?? process.env.NODEIDP_CONFIG;
if (!raw) {
  console.error('nodeidp: no configuration (argv[2] or NODEIDP_CONFIG)');
  process.exit(2);
}
const config = JSON.parse(raw);
const issuer = new URL(config.issuer);
const port = Number(config.port ?? issuer.port);

// A fresh signing key per run, rather than oidc-provider's published
// development keys.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const clients = (config.clients ?? []).map((c) => {
  const client = {
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris ?? [],
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    grant_types: c.grant_types ?? ['authorization_code', 'refresh_token'],
    response_types: (c.grant_types ?? ['authorization_code']).includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: 'client_secret_basic',
  };
  if (c.backchannel_logout_uri) {
    client.backchannel_logout_uri = c.backchannel_logout_uri;
    client.backchannel_logout_session_required = Boolean(c.backchannel_logout_session_required);
  }
  return client;
});

const resourceScope = config.resource_scope ?? 'api:read api:write';

function email(login) {
  return login.includes('@') ? login : `${login}@example.test`;
}

const provider = new Provider(issuer.href.replace(/\/$/, ''), {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // The claims of the granted scopes go in the id_token too, not only to
  // the userinfo endpoint (a relying party reads email from the id_token).
  conformIdTokenClaims: false,
  ttl: {
    AccessToken: 3600,
    Grant: 86400,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: 86400,
    Session: 86400,
  },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, name: id, preferred_username: id, email: email(id), email_verified: true,
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Only what a request names: no resource, no JWT access token.
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => false,
      getResourceServerInfo: (_ctx, resourceIndicator) => ({
        scope: resourceScope,
        audience: resourceIndicator,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 3600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // oidc-provider refuses outgoing requests to special-use addresses
  // (loopback included) by giving fetch a guarded dispatcher; the
  // back-channel logout receivers of the tests are on 127.0.0.1.
  fetch(url, options) {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
});

provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
  console.log(`nodeidp: back-channel logout sent to ${client.clientId} (sub ${accountId}, sid ${sid})`);
});
provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
  console.error(`nodeidp: back-channel logout to ${client.clientId} (sub ${accountId}, sid ${sid}) failed: ${err.message}${err.cause ? ` (${err.cause.message ?? err.cause})` : ''}`);
});
for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error', 'interaction.error']) {
  provider.on(event, (_ctx, err) => {
    console.error(`nodeidp: ${event}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
  });
}

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`nodeidp: ready ${provider.issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
