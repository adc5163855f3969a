// Places voice notifications through the official Node.js SDK and records each call the service placed.
//
//   node send.js +8613800138000 [+8613900000001 ...]
//
// Settings from the environment (the names the SDK's own examples use for the keys):
//   TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY   the API keys
//   VMS_SDK_APPID                                     the voice application's VoiceSdkAppid
//   VMS_ENDPOINT    default vms.tencentcloudapi.com; `voicecb provider` prints the one to use in tests
//   VMS_PROTOCOL    default https://; http:// for `voicecb provider` (keep https:// with `voicecb provider --tls`
//                   and NODE_EXTRA_CA_CERTS set to the ca_path it prints)
//   VMS_PROXY       an HTTP proxy for the SDK, e.g. `voicecb provider`'s address (keeping the real endpoint)
//   VMS_TEMPLATE_ID default 1
// Prints one JSON line per call placed ({"number", "callid"}); on a refusal prints the SDK's error code and
// message to stderr and exits 1.
"use strict";

const tencentcloud = require("tencentcloud-sdk-nodejs");
const store = require("./store");

function client() {
  const VmsClient = tencentcloud.vms.v20200902.Client;
  return new VmsClient({
    credential: {
      secretId: process.env.TENCENTCLOUD_SECRET_ID,
      secretKey: process.env.TENCENTCLOUD_SECRET_KEY,
    },
    region: "ap-guangzhou",
    profile: {
      httpProfile: {
        endpoint: process.env.VMS_ENDPOINT || "vms.tencentcloudapi.com",
        protocol: process.env.VMS_PROTOCOL || "https://",
        reqTimeout: 10,
        proxy: process.env.VMS_PROXY || undefined,
      },
    },
  });
}

async function placeCall(vms, number) {
  const response = await vms.SendTtsVoice({
    TemplateId: process.env.VMS_TEMPLATE_ID || "1",
    TemplateParamSet: ["A-1024"],
    CalledNumber: number,
    VoiceSdkAppid: process.env.VMS_SDK_APPID,
  });
  const callid = response.SendStatus.CallId;
  store.recordCall(callid, number);
  return callid;
}

async function main(numbers) {
  if (numbers.length === 0) {
    console.error("usage: node send.js NUMBER [NUMBER ...]   (E.164, e.g. +8613800138000)");
    return 2;
  }
  const vms = client();
  for (const number of numbers) {
    try {
      const callid = await placeCall(vms, number);
      console.log(JSON.stringify({ number, callid }));
    } catch (err) {
      console.error(`${err.code || "Error"}: ${err.message} (calling ${number})`);
      return 1;
    }
  }
  return 0;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
