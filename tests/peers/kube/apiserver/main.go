// Command kube-apiserver: podid's test peer, the upstream Kubernetes API server built from the Go module proxy.
// Only a launcher: it runs k8s.io/kubernetes/cmd/kube-apiserver/app (see scripts/ensure-kube.sh and docs/real-kube.md).
package main

import (
	"os"

	_ "time/tzdata" // CronJob time zones, as the upstream binary

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
