// Command etcd: podid's test peer, the etcd server behind the real kube-apiserver. Only a launcher for etcdmain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
