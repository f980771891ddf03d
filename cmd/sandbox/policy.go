package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"sandbox/netstack"
)

// ruleFlag is one occurrence of a rule flag (--allow, --deny, ...), kept in
// the order given across all of them: flags are checked in that order.
type ruleFlag struct{ name, value string }

// ruleFlags accumulates every rule flag of one command line.
type ruleFlags struct {
	list []ruleFlag
	// fromEnv marks entries that came from environment variables: the first
	// command-line occurrence of the same flag replaces them (the flag wins).
	fromEnv map[string]bool
}

// ruleValue is the flag.Value of one rule flag name, appending to the
// shared, ordered list.
type ruleValue struct {
	all    *ruleFlags
	name   string
	isBool bool
	seen   bool // a command-line occurrence was seen
	env    bool // Set is being called with the environment's value
}

func (v *ruleValue) String() string   { return "" }
func (v *ruleValue) IsBoolFlag() bool { return v.isBool }

func (v *ruleValue) Set(s string) error {
	if v.env {
		// An environment variable may carry several rules, comma-separated.
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				v.all.list = append(v.all.list, ruleFlag{v.name, part})
			}
		}
		v.all.fromEnv[v.name] = true
		return nil
	}
	if !v.seen && v.all.fromEnv[v.name] {
		kept := v.all.list[:0]
		for _, f := range v.all.list {
			if f.name != v.name {
				kept = append(kept, f)
			}
		}
		v.all.list = kept
	}
	v.seen = true
	if v.isBool {
		if s != "true" {
			return nil // --allow-all=false adds nothing
		}
		s = ""
	}
	v.all.list = append(v.all.list, ruleFlag{v.name, s})
	return nil
}

// envName is the environment variable of a flag: SANDBOX_ + NAME.
func envName(flag string) string {
	return "SANDBOX_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// policyFlags are run's policy flags, generated from netstack.RuleFlags.
func policyFlags(rules *ruleFlags) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "policy", EnvVars: []string{envName("policy")}, Category: "Policy",
			Usage: "read the policy from YAML `FILE` (see examples/policies)"},
		&cli.StringFlag{Name: "policy-yaml", EnvVars: []string{envName("policy-yaml")}, Category: "Policy",
			Usage: "the policy itself, as YAML `TEXT` (for containers: set SANDBOX_POLICY_YAML)"},
	}
	for _, spec := range netstack.RuleFlags {
		v := &ruleValue{all: rules, name: spec.Name, isBool: spec.Arg == ""}
		usage := spec.Usage
		if spec.Arg != "" {
			// The back-quoted word becomes the help's placeholder.
			if strings.Contains(usage, "DEST") {
				usage = strings.Replace(usage, "DEST", "`"+spec.Arg+"`", 1)
			} else {
				usage += " (`" + spec.Arg + "`)"
			}
			usage += "; repeatable"
		}
		flags = append(flags, &envGeneric{GenericFlag: cli.GenericFlag{Name: spec.Name, Value: v, Category: "Policy",
			Usage: usage}, v: v})
	}
	return flags
}

// TakesValue hides the value placeholder of --allow-all in the help.
func (f *envGeneric) TakesValue() bool { return !f.v.isBool }

// String renders the help line through this type, so TakesValue applies.
func (f *envGeneric) String() string { return cli.FlagStringer(f) }

// envGeneric applies the flag's environment variable through the ordered
// accumulator, marked as coming from the environment.
type envGeneric struct {
	cli.GenericFlag
	v *ruleValue
}

func (f *envGeneric) Apply(set *flag.FlagSet) error {
	if val, ok := os.LookupEnv(envName(f.Name)); ok && val != "" {
		f.v.env = true
		err := f.v.Set(val)
		f.v.env = false
		if err != nil {
			return fmt.Errorf("%s: %w", envName(f.Name), err)
		}
	}
	return f.GenericFlag.Apply(set)
}

// resolve looks hostnames up once, when the policy loads.
func resolve(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// loadPolicy builds the policy of a run: flags first, in order, then the
// file's (or inline YAML's) rules and default. With neither, the default is
// "self": the program may talk only to itself.
func loadPolicy(c *cli.Context, rules *ruleFlags) (*netstack.Policy, error) {
	file, inline := c.String("policy"), c.String("policy-yaml")
	var base *netstack.Policy
	switch {
	case file != "" && inline != "":
		return nil, errors.New("--policy and --policy-yaml (SANDBOX_POLICY_YAML) both given: choose one")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--policy: %w", err)
		}
		if base, err = netstack.ParsePolicy(file, data, resolve); err != nil {
			return nil, err
		}
	case inline != "":
		var err error
		if base, err = netstack.ParsePolicy("SANDBOX_POLICY_YAML", []byte(inline), resolve); err != nil {
			return nil, err
		}
	default:
		base = netstack.SelfPolicy()
	}
	var flagRules []netstack.Rule
	for _, f := range rules.list {
		r, err := netstack.ParseFlag(f.name, f.value, resolve)
		if err != nil {
			return nil, err
		}
		if err := unixVerdict(f.name, f.value, r); err != nil {
			return nil, err
		}
		flagRules = append(flagRules, r)
	}
	if len(flagRules) == 0 {
		return base, nil
	}
	return base.WithFlags(flagRules)
}

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "check and explain policy files",
		Subcommands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "validate FILE and print its normalized rules",
				ArgsUsage: "FILE",
				Description: `Exit status 0 when FILE is valid, 1 when it is not: each error names
FILE:LINE:COLUMN and what was expected. 'sandbox run' refuses to start a
program under an invalid policy (exit 125).`,
				Action: func(c *cli.Context) error {
					p, err := readPolicy(c, 1)
					if err != nil {
						return err
					}
					fmt.Fprint(c.App.Writer, p.String())
					return nil
				},
			},
			{
				Name:      "explain",
				Usage:     "say which rule of FILE decides DEST, and why",
				ArgsUsage: "FILE DEST",
				Description: `DEST is a concrete destination: tcp:10.0.0.1:443, udp:[::1]:53,
unix:/run/app.sock or unix:@name.`,
				Action: func(c *cli.Context) error {
					p, err := readPolicy(c, 2)
					if err != nil {
						return err
					}
					req, err := netstack.ParseRequest(c.Args().Get(1))
					if err != nil {
						return &exitError{code: 1, err: fmt.Errorf("DEST: %w", err)}
					}
					fmt.Fprint(c.App.Writer, p.Explain(req))
					return nil
				},
			},
		},
	}
}

func readPolicy(c *cli.Context, nargs int) (*netstack.Policy, error) {
	if c.NArg() != nargs {
		return nil, &exitError{code: 1, err: fmt.Errorf("policy %s: want %s", c.Command.Name, c.Command.ArgsUsage)}
	}
	file := c.Args().First()
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	p, err := netstack.ParsePolicy(file, data, resolve)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return p, nil
}

// unixVerdict refuses a rule flag whose verdict no real Unix socket could
// produce (netstack.UnixVerdictError).
func unixVerdict(name, value string, r netstack.Rule) error {
	name = strings.TrimLeft(name, "-")
	explicit := name == "timeout" && strings.Contains(value, "=")
	for _, d := range r.Dests {
		if err := netstack.UnixVerdictError(d, r.Verdict.Action, explicit); err != nil {
			return fmt.Errorf("--%s %s: %v", name, value, err)
		}
	}
	return nil
}
