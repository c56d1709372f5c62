// Official Azure SDK for JavaScript clients (@azure/identity, @azure/keyvault-secrets), run unmodified against
// azure-sim by crates/azure-sim/tests/sdk_clients.rs.
//
// Usage:
//   node clients.mjs CREDENTIAL token  [--scope SCOPE] [--client-id ID]
//   node clients.mjs CREDENTIAL secret --vault-url URL --name NAME [--client-id ID]
//
// CREDENTIAL is one of
//   managed-identity   ManagedIdentityCredential({clientId}); IMDS is found through AZURE_POD_IDENTITY_AUTHORITY_HOST
//   workload-identity  WorkloadIdentityCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE
//                      and AZURE_AUTHORITY_HOST
//
// TLS trust comes from NODE_EXTRA_CA_CERTS. The simulator is not at a well-known cloud host, so instance discovery
// is turned off (disableInstanceDiscovery) and the Key Vault client does not check that the challenge resource
// matches the vault's domain (disableChallengeResourceVerification): the vault is at 127.0.0.1.
//
// Output: exactly one JSON line on stdout. Success: {"client":"node",...,"ok":true,"token":...} or
// {...,"ok":true,"value":...,"id":...}, exit status 0. Failure: {...,"ok":false,"error":<error name>,
// "aadsts":<code from the SDK's error message or null>,"status":<HTTP status when known>,"message":<the SDK's
// message>}, exit status 1.

import { parseArgs } from "node:util";
import { ManagedIdentityCredential, WorkloadIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

function credential(kind, clientId) {
  switch (kind) {
    case "managed-identity":
      return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
    case "workload-identity":
      return new WorkloadIdentityCredential({ disableInstanceDiscovery: true });
    default:
      throw new Error(`unknown credential ${kind}`);
  }
}

function failure(err) {
  const message = err instanceof Error ? err.message : String(err);
  const code = /AADSTS(\d+)/.exec(message);
  return {
    ok: false,
    error: err?.name ?? typeof err,
    aadsts: code ? Number(code[1]) : null,
    status: err?.statusCode ?? null,
    message,
  };
}

async function run(kind, action, values) {
  const cred = credential(kind, values["client-id"]);
  if (action === "token") {
    const token = await cred.getToken(values.scope);
    return { ok: true, token: token.token };
  }
  const client = new SecretClient(values["vault-url"], cred, { disableChallengeResourceVerification: true });
  const secret = await client.getSecret(values.name);
  return { ok: true, value: secret.value ?? null, id: secret.properties.id ?? null };
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      scope: { type: "string", default: "https://vault.azure.net/.default" },
      "client-id": { type: "string" },
      "vault-url": { type: "string" },
      name: { type: "string" },
    },
  });
  const [kind, action] = positionals;
  if (!["managed-identity", "workload-identity"].includes(kind) || !["token", "secret"].includes(action)) {
    process.stderr.write("usage: node clients.mjs (managed-identity|workload-identity) (token|secret) [options]\n");
    return 2;
  }
  if (action === "secret" && !(values["vault-url"] && values.name)) {
    process.stderr.write("secret needs --vault-url and --name\n");
    return 2;
  }
  let out;
  try {
    out = await run(kind, action, values);
  } catch (err) {
    out = failure(err);
  }
  process.stdout.write(JSON.stringify({ client: "node", credential: kind, action, ...out }) + "\n");
  return out.ok ? 0 : 1;
}

process.exitCode = await main();
