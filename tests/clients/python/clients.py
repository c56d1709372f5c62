"""Official Azure SDK for Python clients, run unmodified against azure-sim by crates/azure-sim/tests/sdk_clients.rs.

Usage:
    clients.py CREDENTIAL token  [--scope SCOPE] [--client-id ID]
    clients.py CREDENTIAL secret --vault-url URL --name NAME [--client-id ID]

CREDENTIAL is one of
    managed-identity   azure.identity.ManagedIdentityCredential(client_id=--client-id); IMDS is found through
                       AZURE_POD_IDENTITY_AUTHORITY_HOST
    client-secret      azure.identity.ClientSecretCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET
    certificate        azure.identity.CertificateCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID,
                       AZURE_CLIENT_CERTIFICATE_PATH (PEM: certificate and private key)
    workload-identity  azure.identity.WorkloadIdentityCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID,
                       AZURE_FEDERATED_TOKEN_FILE
    msal               msal.ConfidentialClientApplication with a client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID,
                       AZURE_CLIENT_SECRET); token only
Entra is found through AZURE_AUTHORITY_HOST (https://host:port) and TLS trust through REQUESTS_CA_BUNDLE.
Because the simulator is not at a well-known cloud host, instance discovery is turned off with the SDKs' documented
options (disable_instance_discovery / instance_discovery=False), and the Key Vault client is told not to verify that
the challenge resource matches the vault's domain (verify_challenge_resource=False): the vault is at 127.0.0.1.

Output: exactly one JSON line on stdout.
    success: {"client": "python", "credential": ..., "action": ..., "ok": true, "token": ...} or
             {..., "ok": true, "value": ..., "id": ...}; exit status 0
    failure: {..., "ok": false, "error": <exception type>, "aadsts": <code from the SDK's message or null>,
              "status": <HTTP status when the SDK reports one>, "message": <the SDK's message>}; exit status 1
"""

import argparse
import json
import os
import re
import sys

CREDENTIALS = ("managed-identity", "client-secret", "certificate", "workload-identity", "msal")
AADSTS = re.compile(r"AADSTS(\d+)")


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"clients.py: environment variable {name} is required")
    return value


def credential(kind, client_id):
    from azure.identity import (
        CertificateCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    if kind == "managed-identity":
        return ManagedIdentityCredential(client_id=client_id)
    if kind == "client-secret":
        return ClientSecretCredential(
            env("AZURE_TENANT_ID"),
            env("AZURE_CLIENT_ID"),
            env("AZURE_CLIENT_SECRET"),
            disable_instance_discovery=True,
        )
    if kind == "certificate":
        return CertificateCredential(
            env("AZURE_TENANT_ID"),
            env("AZURE_CLIENT_ID"),
            certificate_path=env("AZURE_CLIENT_CERTIFICATE_PATH"),
            disable_instance_discovery=True,
        )
    if kind == "workload-identity":
        # Reads AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST itself.
        return WorkloadIdentityCredential()
    raise SystemExit(f"clients.py: {kind} is not an azure-identity credential")


def msal_token(scope):
    import msal

    app = msal.ConfidentialClientApplication(
        env("AZURE_CLIENT_ID"),
        client_credential=env("AZURE_CLIENT_SECRET"),
        authority=f"{env('AZURE_AUTHORITY_HOST').rstrip('/')}/{env('AZURE_TENANT_ID')}",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[scope])
    if "access_token" in result:
        return {"ok": True, "token": result["access_token"]}
    # msal reports Entra errors in the result instead of raising.
    message = f"{result.get('error')}: {result.get('error_description')}"
    return failure("MsalError", message, None)


def failure(error, message, status):
    code = AADSTS.search(message)
    return {
        "ok": False,
        "error": error,
        "aadsts": int(code.group(1)) if code else None,
        "status": status,
        "message": message,
    }


def run(args):
    if args.credential == "msal":
        if args.action != "token":
            raise SystemExit("clients.py: msal supports the token action only")
        return msal_token(args.scope)
    cred = credential(args.credential, args.client_id)
    if args.action == "token":
        return {"ok": True, "token": cred.get_token(args.scope).token}
    from azure.keyvault.secrets import SecretClient

    client = SecretClient(args.vault_url, cred, verify_challenge_resource=False)
    secret = client.get_secret(args.name)
    return {"ok": True, "value": secret.value, "id": secret.id}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("credential", choices=CREDENTIALS)
    parser.add_argument("action", choices=("token", "secret"))
    parser.add_argument("--scope", default="https://vault.azure.net/.default")
    parser.add_argument("--client-id", help="user-assigned identity client ID (managed-identity)")
    parser.add_argument("--vault-url")
    parser.add_argument("--name", help="secret name")
    args = parser.parse_args()
    if args.action == "secret" and not (args.vault_url and args.name):
        parser.error("secret needs --vault-url and --name")
    try:
        out = run(args)
    except Exception as e:  # every SDK error is reported, with the AADSTS code its message carries
        out = failure(type(e).__name__, str(e), getattr(e, "status_code", None))
    out = {"client": "python", "credential": args.credential, "action": args.action, **out}
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
