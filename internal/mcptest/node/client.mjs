// An MCP client for portcullis' tests: the official MCP TypeScript SDK's
// Client over its StreamableHTTPClientTransport, with the SDK's own OAuth
// support (client/auth.js) driven by an OAuthClientProvider kept in memory.
//
// Usage: node client.mjs '<config JSON>'   (or the JSON in MCPTEST_CLIENT)
//
//   {
//     "serverUrl": "http://127.0.0.1:PORT/mcp",
//     "redirectUrl": "http://127.0.0.1:PORT/callback",
//     "clientName": "mcptest client",
//     "scope": "optional scope"
//   }
//
// It talks JSON lines: on stdout it writes
//
//   {"authorize": URL}      when the SDK wants the browser to open URL; it
//                           then reads {"code": "..."} from stdin, hands
//                           the code to transport.finishAuth and connects
//                           anew with the tokens;
//   {"result": {...}, "client": {...}, "tokens": {...}, "authorizeUrl": URL}
//                           once tools/call whoami answered: the whoami
//                           headers, the client information the SDK saved
//                           (dynamic client registration), its tokens, and
//                           the authorization URL (absent without OAuth);
//                           then it exits 0;
//   {"error": "..."}        on any failure, then it exits 1.
//
// A server that needs no authorization is connected to at once: no
// "authorize" line, and "client" and "tokens" are null.

import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

function emit(obj) {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', resolve));
}

async function fail(err) {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof Error && err.stack) console.error(err.stack);
  await emit({ error: message });
  process.exit(1);
}

process.on('unhandledRejection', fail);
process.on('uncaughtException', fail);

const raw = process.argv[2] ?? process.env.MCPTEST_CLIENT;
if (!raw) {
  await fail(new Error('no configuration (argv[2] or MCPTEST_CLIENT)'));
}
const config = JSON.parse(raw);

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function readMessage() {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed before a {"code": ...} line');
  return JSON.parse(value);
}

// An OAuthClientProvider that keeps everything in memory.
class MemoryProvider {
  constructor({ redirectUrl, clientName, scope }) {
    this._redirectUrl = redirectUrl;
    this._metadata = {
      client_name: clientName,
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
    if (scope) this._metadata.scope = scope;
    this.authorizeUrl = undefined;
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return this._metadata;
  }

  // A fresh state per authorization request; the SDK puts it in the
  // authorization URL but never checks it: the Go side compares it with the
  // callback's.
  state() {
    return randomBytes(16).toString('base64url');
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  async redirectToAuthorization(url) {
    this.authorizeUrl = url.href;
    await emit({ authorize: url.href });
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    if (!this._verifier) throw new Error('no PKCE code verifier saved');
    return this._verifier;
  }

  invalidateCredentials(scope) {
    console.error(`mcptest client: SDK invalidates credentials: ${scope}`);
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }
}

function newClient() {
  return new Client({ name: 'portcullis-mcptest-client', version: '0.0.0' });
}

function newTransport(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(config.serverUrl), { authProvider: provider });
  transport.onerror = (err) => console.error(`mcptest client: transport error: ${err?.message ?? err}`);
  return transport;
}

const provider = new MemoryProvider(config);

let client = newClient();
let transport = newTransport(provider);
try {
  await client.connect(transport);
} catch (err) {
  if (!(err instanceof UnauthorizedError) || provider.authorizeUrl === undefined) throw err;
  // The SDK has registered a client and called redirectToAuthorization.
  const msg = await readMessage();
  if (typeof msg.code !== 'string' || msg.code === '') {
    throw new Error(`expected {"code": "..."} on stdin, got ${JSON.stringify(msg)}`);
  }
  await transport.finishAuth(msg.code);
  await client.close().catch(() => {});
  client = newClient();
  transport = newTransport(provider);
  await client.connect(transport);
}

const res = await client.callTool({ name: 'whoami', arguments: {} });
if (res.isError) {
  throw new Error(`whoami failed: ${JSON.stringify(res.content)}`);
}
const text = res.content?.find((c) => c.type === 'text')?.text;
if (typeof text !== 'string') {
  throw new Error(`whoami answered no text content: ${JSON.stringify(res)}`);
}
await emit({
  result: JSON.parse(text),
  client: provider.clientInformation() ?? null,
  tokens: provider.tokens() ?? null,
  authorizeUrl: provider.authorizeUrl,
});
await client.close().catch(() => {});
process.exit(0);
