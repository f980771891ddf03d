package container

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"sandbox/tests/internal/nettest"
)

// The examples stay true: the pod's SANDBOX_* variables exist, its policy is
// valid, it points at the generated profile, and the Dockerfile makes the
// sandbox the entrypoint.
func TestExamples(t *testing.T) {
	root := nettest.ModuleRoot(t)
	sb := nettest.BuildSandbox(t)
	help := nettest.Run(time.Minute, sb, "run", "--help")
	if help.Err != nil {
		t.Fatal(help)
	}

	data, err := os.ReadFile(filepath.Join(root, "examples", "kubernetes", "pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Spec struct {
			TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
			Containers                    []struct {
				Env []struct {
					Name, Value string
				}
				SecurityContext struct {
					SeccompProfile struct {
						Type             string
						LocalhostProfile string `yaml:"localhostProfile"`
					} `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
			}
		}
	}
	if err := yaml.Unmarshal(data, &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("pod.yaml: %d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if p := c.SecurityContext.SeccompProfile; p.Type != "Localhost" || filepath.Base(p.LocalhostProfile) != "seccomp-sandbox.json" {
		t.Errorf("pod.yaml: seccompProfile %+v, want Localhost .../seccomp-sandbox.json", p)
	}
	for _, e := range c.Env {
		if !strings.Contains(help.Stdout, "[$"+e.Name+"]") {
			t.Errorf("pod.yaml: %s is not a variable of sandbox run", e.Name)
		}
		switch e.Name {
		case "SANDBOX_POLICY_YAML":
			file := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(file, []byte(e.Value), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := nettest.Run(time.Minute, sb, "policy", "check", file); r.Err != nil {
				t.Errorf("pod.yaml: SANDBOX_POLICY_YAML: %v", r)
			}
		case "SANDBOX_GRACE":
			d, err := time.ParseDuration(e.Value)
			if err != nil || d >= time.Duration(pod.Spec.TerminationGracePeriodSeconds)*time.Second {
				t.Errorf("pod.yaml: SANDBOX_GRACE %q should be shorter than terminationGracePeriodSeconds %d", e.Value, pod.Spec.TerminationGracePeriodSeconds)
			}
		}
	}

	df, err := os.ReadFile(filepath.Join(root, "examples", "docker", "Dockerfile.app"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^COPY --from=sandbox /usr/local/bin/sandbox /usr/local/bin/sandbox$`,
		`(?m)^ENTRYPOINT \["sandbox", "run", "--"\]$`,
	} {
		if !regexp.MustCompile(re).Match(df) {
			t.Errorf("Dockerfile.app: no line matching %s", re)
		}
	}
}
