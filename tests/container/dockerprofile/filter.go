package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// BuildFilter turns rules into a libseccomp filter: default action
// ERRNO(EPERM), the architectures of the profile, bad-architecture action
// KILL (libseccomp's default, as in runc). Names unknown to libseccomp are
// skipped and returned.
//
// With noPidfdThread, pidfd_open(2) is allowed only with flags == 0 and
// fails with EINVAL otherwise, as on a kernel without PIDFD_THREAD (< 6.9).
func BuildFilter(rules []Rule, noPidfdThread bool) (*seccomp.ScmpFilter, []string, error) {
	f, err := seccomp.NewFilter(seccomp.ActErrno.SetReturnCode(int16(defaultErrno)))
	if err != nil {
		return nil, nil, err
	}
	for _, name := range architectures {
		arch, err := seccomp.GetArchFromString(archName(name))
		if err != nil {
			f.Release()
			return nil, nil, err
		}
		if err := f.AddArch(arch); err != nil {
			f.Release()
			return nil, nil, fmt.Errorf("add architecture %s: %w", name, err)
		}
	}
	if noPidfdThread {
		rules = slices.Clone(rules)
		for i := range rules {
			if slices.Contains(rules[i].Names, "pidfd_open") {
				rules[i].Names = slices.DeleteFunc(slices.Clone(rules[i].Names), func(n string) bool { return n == "pidfd_open" })
			}
		}
		rules = append(rules,
			Rule{Action: actAllow, Names: []string{"pidfd_open"}, Args: []Arg{{Index: 1, Value: 0, Op: opEQ}}},
			Rule{Action: actErrno, ErrnoRet: uint(unix.EINVAL), Names: []string{"pidfd_open"}, Args: []Arg{{Index: 1, Value: 0, Op: opNE}}},
		)
	}
	var skipped []string
	for _, r := range rules {
		action := seccomp.ActAllow
		if r.Action == actErrno {
			action = seccomp.ActErrno.SetReturnCode(int16(r.ErrnoRet))
		}
		var conds []seccomp.ScmpCondition
		for _, a := range r.Args {
			c, err := condition(a)
			if err != nil {
				f.Release()
				return nil, nil, err
			}
			conds = append(conds, c)
		}
		for _, name := range r.Names {
			nr, err := seccomp.GetSyscallFromName(name)
			if err != nil {
				skipped = append(skipped, name)
				continue
			}
			if err := f.AddRuleConditional(nr, action, conds); err != nil {
				f.Release()
				return nil, nil, fmt.Errorf("rule for %s: %w", name, err)
			}
		}
	}
	return f, skipped, nil
}

// LoadFilter builds the filter and loads it on the calling thread.
func LoadFilter(rules []Rule, noPidfdThread bool) error {
	f, _, err := BuildFilter(rules, noPidfdThread)
	if err != nil {
		return err
	}
	defer f.Release()
	if err := f.Load(); err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	return nil
}

// archName maps Docker's SCMP_ARCH_X86_64 to libseccomp's x86_64.
func archName(s string) string {
	switch s {
	case "SCMP_ARCH_X86_64":
		return "x86_64"
	case "SCMP_ARCH_X86":
		return "x86"
	case "SCMP_ARCH_X32":
		return "x32"
	}
	return s
}

func condition(a Arg) (seccomp.ScmpCondition, error) {
	switch a.Op {
	case opEQ:
		return seccomp.MakeCondition(a.Index, seccomp.CompareEqual, a.Value)
	case opNE:
		return seccomp.MakeCondition(a.Index, seccomp.CompareNotEqual, a.Value)
	case opMaskedEQ:
		// libseccomp: (arg & datum_a) == datum_b; Docker's value is the mask.
		return seccomp.MakeCondition(a.Index, seccomp.CompareMaskedEqual, a.Value, a.ValueTwo)
	}
	return seccomp.ScmpCondition{}, fmt.Errorf("unknown operator %q", a.Op)
}

// The JSON format read by dockerd (--security-opt seccomp=FILE) and, being
// a subset of the OCI runtime spec's LinuxSeccomp, by containerd and CRI-O
// for Kubernetes' Localhost profiles. The profile is already resolved (no
// archMap, includes or excludes), so that every reader applies the same
// rules.
type jsonProfile struct {
	DefaultAction   string        `json:"defaultAction"`
	DefaultErrnoRet uint          `json:"defaultErrnoRet"`
	Architectures   []string      `json:"architectures"`
	Syscalls        []jsonSyscall `json:"syscalls"`
}

type jsonSyscall struct {
	Names    []string  `json:"names"`
	Action   string    `json:"action"`
	ErrnoRet *uint     `json:"errnoRet,omitempty"`
	Args     []jsonArg `json:"args,omitempty"`
	Comment  string    `json:"comment,omitempty"`
}

type jsonArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

// ProfileJSON renders rules as a seccomp profile file, tab-indented as
// moby's default.json.
func ProfileJSON(rules []Rule) []byte {
	p := jsonProfile{
		DefaultAction:   actErrno,
		DefaultErrnoRet: uint(defaultErrno),
		Architectures:   architectures,
	}
	for _, r := range rules {
		s := jsonSyscall{Names: r.Names, Action: r.Action, Comment: r.Comment}
		if r.Action == actErrno {
			e := r.ErrnoRet
			s.ErrnoRet = &e
		}
		for _, a := range r.Args {
			s.Args = append(s.Args, jsonArg(a))
		}
		p.Syscalls = append(p.Syscalls, s)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "\t")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		panic(err) // plain data: cannot fail
	}
	return buf.Bytes()
}
