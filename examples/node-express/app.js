// A voice-callback handler in Express: every callback is acknowledged with {"result":0,"errmsg":"OK"}; an
// unanswered or failed call that this service placed (its callid is in the store) is escalated once, however
// often the provider delivers its callbacks; anything unreadable gets {"result":1,"errmsg":...}, never a 5xx.
//
//   PORT=8000 node app.js                           serves http://127.0.0.1:8000/voice/callback
//   ENABLE_TEST_ENDPOINTS=1 PORT=8000 node app.js   adds the two endpoints tests use (never in production):
//     GET  /_test/effects   {"escalations": [...]}: what the handler did
//     POST /_test/prepare   a callback body ({"voiceprompt_callback": {...}}): records its callid as a call
//                           this service placed, so that the handler acts on it
"use strict";

const express = require("express");
const { MAX_BODY_SIZE, Rejected, parse } = require("./callbacks");
const store = require("./store");

const OK = { result: 0, errmsg: "OK" };

// Placed by us, not answered (or failed), not escalated yet: record the escalation (one row per callid).
function escalateOnce(kind, fields) {
  const unanswered = kind === "voice_failure_callback" || (kind === "voiceprompt_callback" && fields.result !== "0");
  if (!unanswered) return;
  const call = store.placedCall(fields.callid);
  if (call === null) return; // not a call this service placed: acknowledged, nothing done
  const rows = store.escalations();
  if (rows.some((row) => row.callid === fields.callid)) return; // a repeat delivery, or the sibling callback
  rows.push({ callid: fields.callid, number: call.number, reason: kind, at: new Date().toISOString() });
  store.saveEscalations(rows); // synchronous: no other callback runs between the check and the write
}

function voiceCallback(req, res) {
  let callback;
  try {
    callback = parse(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
  } catch (err) {
    if (!(err instanceof Rejected)) throw err;
    return res.json({ result: 1, errmsg: err.message }); // nothing is done for what we cannot read
  }
  escalateOnce(callback.kind, callback.fields);
  return res.json(OK);
}

function prepare(req, res) {
  let callid = null;
  try {
    const data = JSON.parse(req.body.toString("utf8"));
    const fields = Object.values(data).find((value) => value && typeof value.callid === "string");
    callid = fields && fields.callid ? fields.callid : null;
  } catch {
    callid = null;
  }
  if (callid !== null && store.placedCall(callid) === null) store.recordCall(callid, "+8613800138000");
  res.json({ prepared: callid });
}

// Bodies the reader refuses (too large, a broken stream) still get the contract's shape.
function contractErrors(err, req, res, next) {
  if (res.headersSent) return next(err);
  const status = err.status >= 400 && err.status < 500 ? err.status : 500;
  res.status(status).json({ result: 1, errmsg: status === 500 ? "internal error" : err.message });
}

function createApp({ testEndpoints = false } = {}) {
  const app = express();
  const raw = express.raw({ type: () => true, limit: MAX_BODY_SIZE });
  app.post("/voice/callback", raw, voiceCallback);
  if (testEndpoints) {
    app.get("/_test/effects", (req, res) => res.json({ escalations: store.escalations() }));
    app.post("/_test/prepare", raw, prepare);
  }
  app.use(contractErrors);
  return app;
}

if (require.main === module) {
  const app = createApp({ testEndpoints: process.env.ENABLE_TEST_ENDPOINTS === "1" });
  const server = app.listen(Number(process.env.PORT || 8000), "127.0.0.1", () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}/voice/callback`);
  });
  process.on("SIGTERM", () => server.close());
}

module.exports = { createApp };
