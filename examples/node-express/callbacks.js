// Reading a voice callback: parse, validate, and say what is wrong (a port of examples/voice_callbacks.py).
// All four kinds arrive at the same URL; the single top-level key names the kind.
"use strict";

const MAX_BODY_SIZE = 64 * 1024; // real callbacks are under 1 KiB

const CALL_STATUS = [
  "result", "accept_time", "call_from", "callid", "end_calltime", "fee", "mobile", "nationcode", "start_calltime",
];
const FIELDS = {
  voiceprompt_callback: CALL_STATUS,
  voicecode_callback: CALL_STATUS,
  voicekey_callback: ["call_from", "callid", "keypress", "mobile", "nationcode"],
  voice_failure_callback: ["call_from", "callid", "failure_code", "failure_reason", "mobile", "nationcode"],
};
const DIGITS = ["start_calltime", "mobile", "nationcode"];
const DIGITS_OR_EMPTY = ["accept_time", "end_calltime", "fee", "call_from"];

class Rejected extends Error {}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// Returns {kind, fields} of a callback body (a Buffer), or throws Rejected saying what is wrong.
function parse(body) {
  if (body.length > MAX_BODY_SIZE) throw new Rejected(`body is ${body.length} bytes, over the limit`);
  let data;
  try {
    data = JSON.parse(utf8.decode(body));
  } catch {
    throw new Rejected("body is not a UTF-8 JSON document");
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw new Rejected("body must be a JSON object");
  const kinds = Object.keys(data).filter((key) => Object.hasOwn(FIELDS, key));
  if (kinds.length !== 1) throw new Rejected(`expected exactly one of ${Object.keys(FIELDS).join(", ")}`);
  const kind = kinds[0];
  const fields = data[kind];
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) throw new Rejected(`${kind} must be a JSON object`);
  const missing = FIELDS[kind].filter((name) => !Object.hasOwn(fields, name));
  if (missing.length) throw new Rejected(`${kind} is missing ${missing.join(", ")}`);
  for (const name of FIELDS[kind]) checkField(name, fields[name]);
  if (!fields.callid) throw new Rejected("callid must not be empty");
  if (kind === "voicekey_callback" && !/^[0-9*#]+$/.test(fields.keypress)) {
    throw new Rejected("keypress must be keypad characters: 0-9, * or #");
  }
  if (Object.hasOwn(fields, "result")) checkCall(fields);
  return { kind, fields };
}

function checkField(name, value) {
  if (name === "failure_code") {
    if (!Number.isInteger(value) || value < 1) throw new Rejected("failure_code must be a positive JSON number");
  } else if (typeof value !== "string") {
    throw new Rejected(`${name} must be a JSON string`);
  } else if (DIGITS.includes(name) && !/^[0-9]+$/.test(value)) {
    throw new Rejected(`${name} must be decimal digits`);
  } else if (DIGITS_OR_EMPTY.includes(name) && !/^[0-9]*$/.test(value)) {
    throw new Rejected(`${name} must be decimal digits or empty`);
  }
}

// A call's result and times must agree (empty or "0" times are normal for an unanswered call).
function checkCall(fields) {
  if (!["0", "1", "2"].includes(fields.result)) throw new Rejected('result must be "0", "1" or "2"');
  const [start, accept, end] = ["start_calltime", "accept_time", "end_calltime"].map((name) => Number(fields[name] || 0));
  if (fields.result === "0" && !(accept && end && fields.fee)) {
    throw new Rejected("an answered call needs accept_time, end_calltime and fee");
  }
  if (fields.result === "0" && !(start <= accept && accept <= end)) {
    throw new Rejected("an answered call needs start_calltime <= accept_time <= end_calltime");
  }
  if (end && end < start) throw new Rejected("end_calltime is before start_calltime");
}

module.exports = { MAX_BODY_SIZE, Rejected, parse };
