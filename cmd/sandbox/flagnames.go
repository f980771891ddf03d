package main

import "github.com/urfave/cli/v2"

// urfave/cli v2 computes a flag's names anew, through a regexp
// (cli.FlagNames), every time it asks for them, and before every action it
// looks each flag up by each of its names (runFlagActions → IsSet →
// lookupFlag, which asks every flag for its names): with run's 30-odd flags
// that is a thousand regexp replacements, half a millisecond of every
// start. The wrappers below answer Names from a copy made once; every other
// method is the flag's own, so parsing and help are unchanged.

type boolNames struct {
	*cli.BoolFlag
	names []string
}

func (f boolNames) Names() []string { return f.names }

type stringNames struct {
	*cli.StringFlag
	names []string
}

func (f stringNames) Names() []string { return f.names }

type intNames struct {
	*cli.IntFlag
	names []string
}

func (f intNames) Names() []string { return f.names }

type durationNames struct {
	*cli.DurationFlag
	names []string
}

func (f durationNames) Names() []string { return f.names }

type genericNames struct {
	*envGeneric
	names []string
}

func (f genericNames) Names() []string { return f.names }

// cacheNames wraps each flag whose type it knows; others stay as they are.
func cacheNames(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		names := f.Names()
		switch t := f.(type) {
		case *cli.BoolFlag:
			f = boolNames{t, names}
		case *cli.StringFlag:
			f = stringNames{t, names}
		case *cli.IntFlag:
			f = intNames{t, names}
		case *cli.DurationFlag:
			f = durationNames{t, names}
		case *envGeneric:
			f = genericNames{t, names}
		}
		out[i] = f
	}
	return out
}
