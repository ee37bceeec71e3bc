// An MCP server for portcullis' tests: the official MCP TypeScript SDK's
// McpServer behind its StreamableHTTPServerTransport (stateless: a fresh
// server and transport per POST, no Mcp-Session-Id), on plain node:http on
// 127.0.0.1, without any authorization of its own.
//
// Usage: node server.mjs PORT
//
// The MCP endpoint is /mcp: POST carries JSON-RPC (answered as an SSE
// stream, the SDK's default); GET and DELETE answer 405, as a stateless
// server has no standalone SSE stream or session to end. Everything else is
// 404.
//
// Its one tool, "whoami" (no arguments), answers one text content item:
// the JSON object of the HTTP request headers of the POST that carried the
// tools/call (node's req.headers: lower-case names; repeated headers joined
// with ", ", cookies with "; "), so a test sees what a gateway in front
// added or removed.
//
// Any Host header and any Origin is accepted: the SDK's DNS-rebinding
// protection (enableDnsRebindingProtection, allowedHosts, allowedOrigins)
// stays off, since a gateway in front may preserve or rewrite Host.
//
// It prints "mcptest: ready http://127.0.0.1:PORT/mcp" once it listens, and
// logs errors to stderr.

import { createServer } from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const port = Number(process.argv[2] ?? process.env.MCPTEST_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('mcptest: usage: node server.mjs PORT');
  process.exit(2);
}

function headersObject(raw) {
  const out = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

function newServer(headers) {
  const server = new McpServer({ name: 'portcullis-mcptest', version: '0.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Returns the HTTP request headers of this tool call as a JSON object.' },
    async () => ({ content: [{ type: 'text', text: JSON.stringify(headers) }] }),
  );
  return server;
}

function sendJSON(res, status, body, extra = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...extra });
  res.end(JSON.stringify(body));
}

const http = createServer(async (req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path !== '/mcp') {
    sendJSON(res, 404, { error: 'not_found' });
    return;
  }
  if (req.method !== 'POST') {
    sendJSON(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }, { Allow: 'POST' });
    return;
  }
  const server = newServer(headersObject(req.headers));
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined, // stateless
    enableDnsRebindingProtection: false, // any Host, any Origin
  });
  res.on('close', () => {
    transport.close().catch(() => {});
    server.close().catch(() => {});
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch (err) {
    console.error('mcptest: error handling request:', err);
    if (!res.headersSent) {
      sendJSON(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }
});

http.listen(port, '127.0.0.1', () => {
  console.log(`mcptest: ready http://127.0.0.1:${port}/mcp`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    http.close();
    http.closeAllConnections?.();
    process.exit(0);
  });
}
