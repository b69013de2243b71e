// Command remoteplugin serves contract.NewService as "svc" to hosts that
// attach over TCP with mutual TLS. Arguments: the certificate and key
// files, and the CA that signs the hosts' certificates. It prints the
// address it listens on, then serves until killed.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: remoteplugin CERT KEY CLIENT-CA")
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caPEM, err := os.ReadFile(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cas := x509.NewCertPool()
	cas.AppendCertsFromPEM(caPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	err = plugin.ServeRemote(ln, map[string]any{"svc": contract.NewService(nil)}, plugin.WithTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    cas,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
