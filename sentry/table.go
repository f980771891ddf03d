package sentry

import (
	"fmt"

	"sandbox/seccomp"
)

// handler decides one trapped call. It returns an outcome, never "continue":
// there is no way for a handler to let the kernel run the call unchecked.
type handler func(s *Supervisor, c *call) outcome

// entry is one row of the syscall table.
type entry struct {
	name    string
	handler handler
	// doc is one line for the README's support matrix.
	doc string
}

// table is the single source of truth for trapped syscalls: the seccomp
// filter, the dispatcher and the support matrix are all derived from it.
var table = []entry{
	{name: "connect", handler: (*Supervisor).handleConnect,
		doc: "decided by the netstack; allowed calls are performed by the supervisor on the caller's own socket"},
}

// FilterRules is the seccomp filter the init stage installs, derived from
// the table.
func FilterRules() []seccomp.Rule {
	rules := make([]seccomp.Rule, 0, len(table))
	for _, e := range table {
		rules = append(rules, seccomp.Rule{Syscall: e.name, Action: seccomp.Notify, ArgNonZero: -1})
	}
	return rules
}

// dispatchTable maps native syscall numbers to handlers.
type dispatchTable map[int32]*entry

func newDispatchTable() (dispatchTable, error) {
	d := make(dispatchTable, len(table))
	for i := range table {
		nr, err := seccomp.SyscallNumber(table[i].name)
		if err != nil {
			return nil, fmt.Errorf("syscall table: %w", err)
		}
		d[nr] = &table[i]
	}
	return d, nil
}

// SupportMatrix renders the table as Markdown rows for the README.
func SupportMatrix() string {
	s := "| syscall | handling |\n|---|---|\n"
	for _, e := range table {
		s += fmt.Sprintf("| `%s` | %s |\n", e.name, e.doc)
	}
	return s
}
