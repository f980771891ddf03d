package main

import (
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

// Every flag of run answers Names from its cache, with the names
// urfave/cli would compute: a flag type cacheNames does not know would
// bring the quadratic regexp work back.
func TestRunFlagNamesCached(t *testing.T) {
	for _, f := range runCommand().Flags {
		var inner cli.Flag
		switch w := f.(type) {
		case boolNames:
			inner = w.BoolFlag
		case stringNames:
			inner = w.StringFlag
		case intNames:
			inner = w.IntFlag
		case durationNames:
			inner = w.DurationFlag
		case genericNames:
			inner = w.envGeneric
		default:
			t.Errorf("flag %v (%T) is not wrapped by cacheNames", f.Names(), f)
			continue
		}
		if got, want := f.Names(), inner.Names(); !reflect.DeepEqual(got, want) {
			t.Errorf("cached names %v, want %v", got, want)
		}
	}
}
