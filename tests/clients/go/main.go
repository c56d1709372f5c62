// Command clients runs the official Azure SDK for Go credentials (azidentity) and Key Vault secrets client
// (azsecrets), unmodified, against azure-sim; crates/azure-sim/tests/sdk_clients.rs builds and drives it.
//
// Usage:
//
//	clients CREDENTIAL token  [-scope SCOPE] [-client-id ID]
//	clients CREDENTIAL secret -vault-url URL -name NAME [-client-id ID]
//
// CREDENTIAL is one of
//
//	managed-identity   azidentity.ManagedIdentityCredential with ID = ClientID(-client-id), IMDS source
//	workload-identity  azidentity.WorkloadIdentityCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID,
//	                   AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST
//
// TLS trust comes from SSL_CERT_FILE (Go's standard system-roots override). The simulator is not at a well-known
// cloud host, so instance discovery is turned off (WorkloadIdentityCredentialOptions.DisableInstanceDiscovery) and
// the Key Vault client does not check that the challenge resource matches the vault's domain
// (azsecrets.ClientOptions.DisableChallengeResourceVerification): the vault is at 127.0.0.1.
//
// IMDS: unlike the Python and JavaScript SDKs, azidentity (and the MSAL for Go it builds on) has no endpoint
// override for IMDS; it always sends to http://169.254.169.254. On a node that address is redirected to the
// pod-identity agent by a DNAT rule. This program does the same in-process through the SDK's documented
// transport option (azcore.ClientOptions.Transport): connections to 169.254.169.254:80 are dialled to the address
// in PODID_IMDS_ADDR (host:port) instead. Without PODID_IMDS_ADDR it refuses to dial 169.254.169.254 at all.
//
// Output: exactly one JSON line on stdout. Success: {"client":"go",...,"ok":true,"token":...} or
// {...,"ok":true,"value":...,"id":...}, exit status 0. Failure: {...,"ok":false,"error":<Go error type>,
// "aadsts":<code from the SDK's error text or null>,"status":<HTTP status when known>,"message":<the SDK's error
// text>}, exit status 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

const imdsAddr = "169.254.169.254:80"

var aadsts = regexp.MustCompile(`AADSTS(\d+)`)

type result map[string]any

// imdsTransport dials the simulated IMDS when the SDK asks for the link-local IMDS address.
func imdsTransport() (*http.Client, error) {
	target := os.Getenv("PODID_IMDS_ADDR")
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.Proxy = nil
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == imdsAddr {
			if target == "" {
				return nil, errors.New("refusing to dial 169.254.169.254: PODID_IMDS_ADDR is not set")
			}
			addr = target
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: t}, nil
}

func credential(kind, clientID string) (azcore.TokenCredential, error) {
	switch kind {
	case "managed-identity":
		transport, err := imdsTransport()
		if err != nil {
			return nil, err
		}
		opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: transport}}
		if clientID != "" {
			opts.ID = azidentity.ClientID(clientID)
		}
		return azidentity.NewManagedIdentityCredential(opts)
	case "workload-identity":
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			DisableInstanceDiscovery: true,
		})
	}
	return nil, fmt.Errorf("unknown credential %q", kind)
}

func failure(err error) result {
	msg := err.Error()
	r := result{"ok": false, "error": fmt.Sprintf("%T", err), "aadsts": nil, "status": nil, "message": msg}
	if m := aadsts.FindStringSubmatch(msg); m != nil {
		if n, e := strconv.Atoi(m[1]); e == nil {
			r["aadsts"] = n
		}
	}
	var authErr *azidentity.AuthenticationFailedError
	var respErr *azcore.ResponseError
	if errors.As(err, &authErr) && authErr.RawResponse != nil {
		r["status"] = authErr.RawResponse.StatusCode
	} else if errors.As(err, &respErr) {
		r["status"] = respErr.StatusCode
	}
	return r
}

func run(ctx context.Context, kind, action, scope, clientID, vaultURL, name string) result {
	cred, err := credential(kind, clientID)
	if err != nil {
		return failure(err)
	}
	switch action {
	case "token":
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			return failure(err)
		}
		return result{"ok": true, "token": tok.Token}
	case "secret":
		client, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{
			DisableChallengeResourceVerification: true,
		})
		if err != nil {
			return failure(err)
		}
		resp, err := client.GetSecret(ctx, name, "", nil)
		if err != nil {
			return failure(err)
		}
		r := result{"ok": true, "value": nil, "id": nil}
		if resp.Value != nil {
			r["value"] = *resp.Value
		}
		if resp.ID != nil {
			r["id"] = string(*resp.ID)
		}
		return r
	}
	return failure(fmt.Errorf("unknown action %q", action))
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: clients (managed-identity|workload-identity) (token|secret) [flags]")
		os.Exit(2)
	}
	kind, action := os.Args[1], os.Args[2]
	fs := flag.NewFlagSet("clients", flag.ExitOnError)
	scope := fs.String("scope", "https://vault.azure.net/.default", "token scope")
	clientID := fs.String("client-id", "", "user-assigned identity client ID (managed-identity)")
	vaultURL := fs.String("vault-url", "", "Key Vault URL (secret)")
	name := fs.String("name", "", "secret name (secret)")
	if err := fs.Parse(os.Args[3:]); err != nil {
		os.Exit(2)
	}
	if action == "secret" && (*vaultURL == "" || *name == "") {
		fmt.Fprintln(os.Stderr, "secret needs -vault-url and -name")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := run(ctx, kind, action, *scope, *clientID, *vaultURL, *name)
	r["client"], r["credential"], r["action"] = "go", kind, action
	line, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(string(line))
	if r["ok"] != true {
		os.Exit(1)
	}
}
