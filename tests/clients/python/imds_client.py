"""The official Azure SDK for Python as a pod runs it: no endpoint override, so IMDS is http://169.254.169.254.

Run by crates/podid/tests/agent_netns inside a pod network namespace, whose requests to 169.254.169.254:80 the node
namespace's `aad-metadata` chain redirects to `podid agent`. Unlike clients.py (which points the SDK at azure-sim
with AZURE_POD_IDENTITY_AUTHORITY_HOST), this program refuses to run when any variable that would redirect or
short-cut the SDK's managed-identity source is set: the point is the SDK's own default path.

Usage:
    imds_client.py managed-identity [--client-id ID] [--scope SCOPE] [--retry-total N]
    imds_client.py default          [--client-id ID] [--scope SCOPE]

    managed-identity  azure.identity.ManagedIdentityCredential(client_id=ID); --retry-total is azure-core's retry
                      option (the SDK retries IMDS 404s for ~24 s by default; 0 shows the agent's answer as is)
    default           azure.identity.DefaultAzureCredential(managed_identity_client_id=ID) (it probes IMDS first)

Output: exactly one JSON line on stdout; the token itself is never printed, only its decoded claims.
    success: {"client": "python-imds", "credential": ..., "ok": true, "claims": {"appid", "oid", "xms_mirid", "aud",
              "tid"}, "expires_on": N, "seconds": elapsed (credential and
              token request, after the imports)}; exit status 0
    failure: {..., "ok": false, "error": <exception type>, "status": <HTTP status when the SDK reports one>,
              "message": <the SDK's message>, "seconds": elapsed}; exit status 1
    refused to run (an override variable is set): message on stderr, exit status 2
"""

import argparse
import base64
import json
import os
import sys
import time

# Variables that make azure-identity use something other than IMDS at 169.254.169.254, or that could route its
# requests elsewhere (proxies).
OVERRIDES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
CLAIMS = ("appid", "oid", "xms_mirid", "aud", "tid")


def clean_environment_or_exit():
    bad = sorted(k for k in os.environ if k in OVERRIDES or k.startswith("AZURE_"))
    if bad:
        sys.stderr.write(f"imds_client.py: refusing to run with override variables set: {', '.join(bad)}\n")
        sys.exit(2)


def claims(token):
    """The JWT's payload claims of interest (the signature is azure-sim's; only the identity is checked here)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return {}
    return {k: data.get(k) for k in CLAIMS}


def credential(kind, client_id, retry_total):
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if kind == "managed-identity":
        kwargs = {} if retry_total is None else {"retry_total": retry_total}
        return ManagedIdentityCredential(client_id=client_id, **kwargs)
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("credential", choices=("managed-identity", "default"))
    parser.add_argument("--client-id", help="user-assigned identity client ID")
    parser.add_argument("--scope", default="https://vault.azure.net/.default")
    parser.add_argument("--retry-total", type=int, help="azure-core retry_total (managed-identity only)")
    args = parser.parse_args()
    clean_environment_or_exit()
    import azure.identity  # noqa: F401  (imported before the clock starts: "seconds" is the token request)

    started = time.monotonic()
    try:
        token = credential(args.credential, args.client_id, args.retry_total).get_token(args.scope)
        out = {"ok": True, "claims": claims(token.token), "expires_on": token.expires_on}
    except Exception as e:  # every SDK error is reported, never raised
        out = {"ok": False, "error": type(e).__name__, "status": getattr(e, "status_code", None), "message": str(e)}
    out = {"client": "python-imds", "credential": args.credential, **out, "seconds": time.monotonic() - started}
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
