// Node server for bench/run.sh. One handler, served by Node's own `http` module:
//   node server.js PORT plain   the app, untraced (also what the floor and Passport conditions trace)
//   node server.js PORT xray    the same app behind the AWS X-Ray SDK's Express middleware
//                               (aws-xray-sdk-express openSegment, automatic mode), every request
//                               sampled, segments sent by UDP to AWS_XRAY_DAEMON_ADDRESS
// The middleware is called in front of the handler exactly as Express would call it, without
// Express's router, so the difference between the two modes is the SDK's cost alone.
'use strict';
const http = require('http');

const port = Number(process.argv[2] || 18481);
const mode = process.argv[3] || 'plain';
const body = 'x'.repeat(600); // the same 600-byte page nginx serves

function app(req, res) {
  res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': body.length });
  res.end(body);
}

let handler = app;
if (mode === 'xray') {
  const AWSXRay = require('aws-xray-sdk-core');
  const xrayExpress = require('aws-xray-sdk-express');
  // Local rules only (no daemon to poll for centralized rules), and record every request.
  AWSXRay.middleware.disableCentralizedSampling();
  AWSXRay.middleware.setSamplingRules({ version: 2, default: { fixed_target: 1, rate: 1.0 }, rules: [] });
  AWSXRay.setContextMissingStrategy('IGNORE_ERROR');
  const open = xrayExpress.openSegment('node-bench');
  handler = (req, res) => open(req, res, () => app(req, res));
} else if (mode !== 'plain') {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

const server = http.createServer(handler);
server.keepAliveTimeout = 300000;
server.listen(port, '127.0.0.1', () => console.error(`node-bench: ready (${mode})`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
