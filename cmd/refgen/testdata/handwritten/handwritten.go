// Package handwritten already has a proxy where refgen would write one.
package handwritten

import "github.com/refplug/refplug/refbroker"

// Thing has a hand-written proxy.
type Thing interface{ Name() (string, error) }

type thingProxy struct{ *refbroker.Ref }

func (p thingProxy) Name() (string, error) {
	var s string
	err := p.Invoke("Name", nil, &s)
	return s, err
}
