// Package instances uses instantiations of its generic interface, one of
// which another file already registers a proxy for.
package instances

// Cache is generic.
type Cache[T any] interface {
	Get(key string) (T, error)
}

// StringCache names one instantiation; cache_string.go registers its proxy.
type StringCache = Cache[string]

// Caches hands out instantiations of Cache.
type Caches interface {
	Strings() (Cache[string], error)
	Ints() (Cache[int], error)
}
