// A real consumer of credential_process: the AWS SDK for JavaScript v3.
//
//   node caller-identity.mjs PROFILE
//
// Resolves credentials with fromProcess({profile}) (the profile's credential_process), calls
// STS GetCallerIdentity and prints the caller ARN (and nothing else) on stdout.
//
// Endpoint: the SDK honours `endpoint_url` in the shared config (and AWS_ENDPOINT_URL_STS /
// AWS_ENDPOINT_URL), but reads it from the profile named by AWS_PROFILE (else [default]) only, not
// from the client's `profile` option: so AWS_PROFILE is set to PROFILE here when it is unset.
// CREDPROC_TEST_STS_URL, when set, gives the endpoint explicitly instead.
// Region comes from the profile (or AWS_REGION) through the client's `profile` option.
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromProcess } from "@aws-sdk/credential-providers";

const profile = process.argv[2];
if (!profile) {
  console.error("usage: node caller-identity.mjs PROFILE");
  process.exit(2);
}
if (!process.env.AWS_PROFILE) process.env.AWS_PROFILE = profile;

try {
  const config = {
    profile,
    credentials: fromProcess({ profile }),
    maxAttempts: 1,
  };
  if (process.env.CREDPROC_TEST_STS_URL) config.endpoint = process.env.CREDPROC_TEST_STS_URL;
  const client = new STSClient(config);
  const out = await client.send(new GetCallerIdentityCommand({}));
  if (!out.Arn) throw new Error("GetCallerIdentity returned no Arn: " + JSON.stringify(out));
  process.stdout.write(out.Arn + "\n");
} catch (e) {
  console.error(`caller-identity.mjs: ${e && e.name}: ${e && e.message}`);
  if (e && e.stack) console.error(e.stack);
  process.exit(1);
}
