package plugin_test

import (
	"context"

	"github.com/refplug/refplug/plugin"
)

type store struct{ data map[string][]byte }

func (s *store) Get(ctx context.Context, key string) ([]byte, error) { return s.data[key], nil }

// A plugin binary's main serves its objects by name. (Run by hand, such a
// binary says it is a plugin and exits: a host starts it with host.Load.)
func ExampleServe() {
	plugin.Logger().Info("starting")
	plugin.Serve(map[string]any{"store": &store{data: map[string][]byte{}}})
}
