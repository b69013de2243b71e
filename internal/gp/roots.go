package gp

import (
	"fmt"
	"maps"
	"slices"

	"github.com/refplug/refplug/refbroker"
)

// RootProblems says what is wrong with objects as a plugin's roots, in
// name order: each that is nil, and each that offers nothing to call
// (refbroker.CheckServable). plugin.Serve and host.InProcess refuse roots
// with problems, and an empty set (len(objects) == 0), each in its words.
func RootProblems(objects map[string]any) []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(objects)) {
		obj := objects[name]
		if obj == nil {
			problems = append(problems, fmt.Sprintf("the object named %q is nil", name))
			continue
		}
		if err := refbroker.CheckServable(obj); err != nil {
			problems = append(problems, fmt.Sprintf("the object named %q: %v", name, err))
		}
	}
	return problems
}
