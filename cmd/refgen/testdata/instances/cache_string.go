package instances

import "github.com/refplug/refplug/refbroker"

// stringCacheProxy is what refgen -type StringCache wrote before refgen
// wrote the instantiations a contract uses by itself.
type stringCacheProxy struct{ *refbroker.Ref }

func (p stringCacheProxy) Get(key string) (string, error) {
	var r0 string
	err := p.Ref.Invoke("Get", []any{key}, &r0)
	return r0, err
}

func init() {
	refbroker.RegisterInterface[StringCache](func(r *refbroker.Ref) StringCache { return stringCacheProxy{r} })
}
