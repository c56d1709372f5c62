"""The documented pod-identity application: the official Azure SDK for Python, run as a pod by `podid run`.

It runs inside a playground pod's network namespace with the pod's environment (no endpoint override: the SDK calls
http://169.254.169.254, which the node agent's redirect answers) and trusts the simulators' CA through
REQUESTS_CA_BUNDLE, which `podid run` sets as a pod image trusts public CAs.

Usage:
    keyvault_client.py secret --vault-url URL --secret NAME [--client-id ID] [--retry-total N]
        ManagedIdentityCredential(client_id=ID), then SecretClient(URL, credential).get_secret(NAME)
    keyvault_client.py raw [--client-id ID]
        one plain HTTP GET of the IMDS token endpoint (urllib, Metadata: true): status, body and milliseconds

Output: exactly one JSON line on stdout. Tokens and secret values are never printed: the secret's SHA-256 and the
token's identity claims are.
    secret: {"ok": true, "appid": ..., "secret_sha256": ..., "seconds": N} | {"ok": false, "step": "token"|"secret",
            "error": <exception type>, "status": <HTTP status when known>, "message": ..., "seconds": N}
    raw:    {"status": N, "body": <text, token removed>, "ms": N}
"""

import argparse
import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request

VAULT_SCOPE = "https://vault.azure.net/.default"


def claims(token):
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def secret(args):
    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient

    start = time.monotonic()
    kwargs = {}
    if args.retry_total is not None:
        kwargs["retry_total"] = args.retry_total
    cred = ManagedIdentityCredential(client_id=args.client_id, **kwargs)
    out = {"client": "python-keyvault", "client_id": args.client_id}
    try:
        token = cred.get_token(VAULT_SCOPE)
        out["appid"] = claims(token.token).get("appid")
    except Exception as e:  # noqa: BLE001 - report whatever the SDK raised
        out.update(ok=False, step="token", error=type(e).__name__, status=getattr(e, "status_code", None),
                   message=str(e)[:500], seconds=round(time.monotonic() - start, 3))
        return out, 1
    try:
        client = SecretClient(vault_url=args.vault_url, credential=cred, **kwargs)
        value = client.get_secret(args.secret).value
    except Exception as e:  # noqa: BLE001
        out.update(ok=False, step="secret", error=type(e).__name__, status=getattr(e, "status_code", None),
                   message=str(e)[:500], seconds=round(time.monotonic() - start, 3))
        return out, 1
    out.update(ok=True, secret_sha256=hashlib.sha256(value.encode()).hexdigest(),
               seconds=round(time.monotonic() - start, 3))
    return out, 0


def raw(args):
    url = ("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
           "&resource=https%3A%2F%2Fvault.azure.net")
    if args.client_id:
        url += "&client_id=" + args.client_id
    req = urllib.request.Request(url, headers={"Metadata": "true"})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode(errors="replace")
    ms = round((time.monotonic() - start) * 1000, 1)
    if status == 200:
        body = "<token>"
    return {"status": status, "body": body.strip()[:500], "ms": ms}, 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("secret")
    s.add_argument("--vault-url", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--client-id")
    s.add_argument("--retry-total", type=int)
    r = sub.add_parser("raw")
    r.add_argument("--client-id")
    args = p.parse_args()
    out, code = secret(args) if args.mode == "secret" else raw(args)
    print(json.dumps(out))
    sys.exit(code)


if __name__ == "__main__":
    main()
