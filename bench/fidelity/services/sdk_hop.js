// An Express service of the fidelity benchmark instrumented with the AWS X-Ray SDK for Node
// (aws-xray-sdk-core and aws-xray-sdk-express, found through NODE_PATH). The SDK writes its own
// segments to AWS_XRAY_DAEMON_ADDRESS and its own X-Amzn-Trace-Id on every outgoing call, so it
// is the reference for a hop whose parents the SDK knows exactly.
//
// Usage: node sdk_hop.js PORT SEGMENT_NAME DOWN_URL_PREFIX
// Listens on 0.0.0.0:PORT and prints "listening on port PORT". A request for /<hop>/<id> waits a
// random 0-20 ms (a timer awaited through a promise), GETs DOWN_URL_PREFIX + <id> through the
// SDK-patched http module (Node's global keep-alive agent), and answers 200 with that body after
// its own line (502 when the call failed or answered >= 400). Every request is sampled (local
// rule, rate 1.0) unless its header says Sampled=0.
'use strict';
const AWSXRay = require('aws-xray-sdk-core');
const xrayExpress = require('aws-xray-sdk-express');
const express = require('express');
const http = require('http');

const [portText, segmentName, down] = process.argv.slice(2);
if (!portText || !segmentName || !down) {
  console.error('usage: node sdk_hop.js PORT SEGMENT_NAME DOWN_URL_PREFIX');
  process.exit(2);
}

AWSXRay.setLogger({
  error: (...a) => console.error('xray-sdk error:', ...a),
  warn: (...a) => console.error('xray-sdk warn:', ...a),
  info: () => {},
  debug: () => {},
});
AWSXRay.middleware.disableCentralizedSampling();
AWSXRay.middleware.setSamplingRules({ version: 2, rules: [], default: { fixed_target: 0, rate: 1.0 } });
AWSXRay.captureHTTPsGlobal(http, true);

const pause = () => new Promise((resolve) => setTimeout(resolve, Math.random() * 20));

function get(url) {
  return new Promise((resolve, reject) => {
    const r = http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    r.setTimeout(30000, () => r.destroy(new Error('timeout')));
    r.on('error', reject);
  });
}

const app = express();
app.use(xrayExpress.openSegment(segmentName));
app.get('/:hop/:id', async (req, res) => {
  const line = `${req.params.hop} ${req.params.id}\n`;
  await pause();
  try {
    const r = await get(down + req.params.id);
    res.status(r.status < 400 ? 200 : 502).type('text/plain').send(line + r.body);
  } catch (e) {
    res.status(502).type('text/plain').send(`${line}call failed: ${e.message}\n`);
  }
});
app.use(xrayExpress.closeSegment());

const server = app.listen({ port: Number(portText), host: '0.0.0.0', backlog: 512 }, () => {
  console.log(`listening on port ${portText}`);
});
server.keepAliveTimeout = 30000;
process.on('SIGTERM', () => process.exit(0));
