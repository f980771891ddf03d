package sentry

import (
	"strings"

	"github.com/sirupsen/logrus"
)

// Layers beyond the seccomp filter. seccomp sees only the calls of the
// program's own tree; these close what it cannot see: other same-uid
// processes (Landlock), inherited sockets (descriptors), a root program's
// power over the network (capabilities) and capabilities regained inside a
// new user namespace (filter rows, see table.go). The init stage applies
// them all before the filter is installed, each failing closed; it is C
// (initstage.c: sb_close_inherited, sb_drop_capabilities,
// sb_restrict_landlock), run before the Go runtime would start.

// LayerOptions are the run's choices for the layers.
type LayerOptions struct {
	Landlock    bool // scope ptrace and signals to the sandbox (--landlock)
	AllowUserns bool // let the program create user namespaces (--allow-userns)
	KeepCaps    bool // keep every capability the program would have (--keep-caps)
	PreserveFDs int  // fds 3..3+N-1 pass through (--preserve-fds)
}

// initOptions are the choices the init stage applies (struct sb_options).
type initOptions struct {
	LayerOptions
	RawSockets bool
}

// logLayers writes the init stage's report, one line per layer, at debug
// level: setup, not a decision (-vv, or --log-level debug, shows them).
func logLayers(log *logrus.Logger, report []string) {
	if !log.IsLevelEnabled(logrus.DebugLevel) {
		return // building the entries costs a start ~20 µs for nothing
	}
	for _, line := range report {
		f := logrus.Fields{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		log.WithFields(f).Debug("layer applied")
	}
}
