package api

// api.go is written by the generator, then refgen writes the proxies for
// it; the two directives are in one file so that they run in this order.

//go:generate go run ../gen
//go:generate go run github.com/refplug/refplug/cmd/refgen -type API,Hooks
