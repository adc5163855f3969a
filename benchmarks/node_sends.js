// Places calls through the official Node.js SDK (examples/node-express's node_modules) and prints how many
// milliseconds each send took, as one JSON list; bench_provider.py runs it next to the Python SDK.
//
//   node benchmarks/node_sends.js WARM_UP COUNT
//
// Settings from the environment, as examples/node-express/send.js reads them: TENCENTCLOUD_SECRET_ID,
// TENCENTCLOUD_SECRET_KEY, VMS_SDK_APPID, VMS_ENDPOINT, VMS_PROTOCOL (and NODE_EXTRA_CA_CERTS for https).
"use strict";

const path = require("path");

const project = path.join(__dirname, "..", "examples", "node-express");
const tencentcloud = require(require.resolve("tencentcloud-sdk-nodejs", { paths: [project] }));

async function main(warmUp, count) {
  const VmsClient = tencentcloud.vms.v20200902.Client;
  const vms = new VmsClient({
    credential: { secretId: process.env.TENCENTCLOUD_SECRET_ID, secretKey: process.env.TENCENTCLOUD_SECRET_KEY },
    region: "ap-guangzhou",
    profile: { httpProfile: { endpoint: process.env.VMS_ENDPOINT, protocol: process.env.VMS_PROTOCOL, reqTimeout: 10 } },
  });
  const times = [];
  for (let i = 0; i < warmUp + count; i++) {
    const began = process.hrtime.bigint();
    await vms.SendTtsVoice({
      TemplateId: "1",
      TemplateParamSet: ["A-1"],
      CalledNumber: "+8613800138000",
      VoiceSdkAppid: process.env.VMS_SDK_APPID,
    });
    if (i >= warmUp) times.push(Number(process.hrtime.bigint() - began) / 1e6);
  }
  console.log(JSON.stringify(times));
}

main(Number(process.argv[2]), Number(process.argv[3])).catch((err) => {
  console.error(`${err.code || "Error"}: ${err.message}`);
  process.exitCode = 1;
});
