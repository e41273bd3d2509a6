// A real consumer of credential_process: the AWS SDK for JavaScript v2 (npm aws-sdk), beside v3's
// caller-identity.mjs.
//
//   node caller-identity-v2.cjs PROFILE STS_URL [CALLS]
//
// Resolves credentials with new AWS.ProcessCredentials({profile}) (the profile's credential_process;
// v2 reads ~/.aws/config only with AWS_SDK_LOAD_CONFIG=1, which is set here when unset, as a user of
// a profile in ~/.aws/config must), makes ONE AWS.STS client with the endpoint set here (v2 reads no
// endpoint from the profile), calls GetCallerIdentity CALLS times (default 2) in turn and prints one
// JSON line {"Arn": ...} per call.
"use strict";

if (!process.env.AWS_SDK_LOAD_CONFIG) process.env.AWS_SDK_LOAD_CONFIG = "1";
// v2 prints a maintenance-mode notice on stderr when loaded; it is noise here.
if (!process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE) process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = "1";
const AWS = require("aws-sdk");

const [profile, endpoint, callsArg = "2"] = process.argv.slice(2);
if (!profile || !endpoint || process.argv.length > 5) {
  console.error("usage: node caller-identity-v2.cjs PROFILE STS_URL [CALLS]");
  process.exit(2);
}
if (!/^[1-9][0-9]*$/.test(callsArg)) {
  console.error(`caller-identity-v2.cjs: CALLS must be a positive integer, not ${JSON.stringify(callsArg)}`);
  process.exit(2);
}

async function main() {
  const credentials = new AWS.ProcessCredentials({ profile });
  const client = new AWS.STS({ credentials, endpoint, region: "us-east-1", maxRetries: 0 });
  for (let i = 0; i < Number(callsArg); i++) {
    const out = await client.getCallerIdentity({}).promise();
    if (!out.Arn) throw new Error("GetCallerIdentity returned no Arn: " + JSON.stringify(out));
    process.stdout.write(JSON.stringify({ Arn: out.Arn }) + "\n");
  }
}

main().catch((e) => {
  console.error(`caller-identity-v2.cjs: ${e && e.code}: ${e && e.message}`);
  process.exit(1);
});
