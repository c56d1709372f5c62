// Command kube-controller-manager: podid's test peer (default ServiceAccounts, namespace deletion, garbage
// collection, Deployment -> ReplicaSet -> Pod). Only a launcher for k8s.io/kubernetes/cmd/kube-controller-manager/app.
package main

import (
	"os"

	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
