// A Node service of the fidelity benchmark: the stock `http` server and clients, no tracing code;
// every request is served on the one event-loop thread.
//
// Usage: node node_hop.js PORT CLIENT=DOWN_URL_PREFIX...
// CLIENT is how that call is made:
//   keepalive  http.get with Node's global agent (keep-alive, pooled connections since Node 19)
//   noagent    http.get with `agent: false` (a new connection per call)
//   fetch      the global fetch() (undici, its own keep-alive pool)
// Listens on 0.0.0.0:PORT and prints "listening on port PORT". A request for /<hop>/<id> makes
// the calls one after the other, in a random order (so that no client kind is always the first
// call after the request's read), each after a random 0-20 ms wait (a timer awaited through a
// promise), to DOWN_URL_PREFIX + <id>, and answers 200 with their bodies after its own line (502
// when a call failed or answered >= 400).
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const calls = process.argv.slice(3).map((arg) => {
  const eq = arg.indexOf('=');
  return { client: arg.slice(0, eq), prefix: arg.slice(eq + 1) };
});
if (!port || calls.some((c) => !['keepalive', 'noagent', 'fetch'].includes(c.client))) {
  console.error('usage: node node_hop.js PORT (keepalive|noagent|fetch)=DOWN_URL_PREFIX...');
  process.exit(2);
}

function shuffled(items) {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const pause = () => new Promise((resolve) => setTimeout(resolve, Math.random() * 20));

function get(url, agent) {
  return new Promise((resolve, reject) => {
    const r = http.get(url, { agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    r.setTimeout(30000, () => r.destroy(new Error('timeout')));
    r.on('error', reject);
  });
}

async function call(client, url) {
  if (client === 'fetch') {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  }
  return get(url, client === 'keepalive' ? http.globalAgent : false);
}

const server = http.createServer(async (req, res) => {
  const parts = req.url.split('/');
  if (parts.length !== 3) {
    res.writeHead(404);
    return res.end('no route\n');
  }
  let body = `${parts[1]} ${parts[2]}\n`;
  let status = 200;
  for (const c of shuffled(calls)) {
    await pause();
    try {
      const r = await call(c.client, c.prefix + parts[2]);
      if (r.status >= 400) status = 502;
      body += r.body;
    } catch (e) {
      status = 502;
      body += `call failed: ${e.message}\n`;
    }
  }
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 30000;
server.listen({ port, host: '0.0.0.0', backlog: 512 }, () => {
  console.log(`listening on port ${port}`);
});
process.on('SIGTERM', () => process.exit(0));
