package sentry

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// summary counts finished calls by destination, verdict and errno, for
// --summary and --summary-json. Calls answered before any decision
// (verdict=native: glibc's nscd probe, EBADF) are no decisions: only their
// number is kept. The log's goroutine counts; the key holds no built
// strings.
type summary struct {
	mu     sync.Mutex
	counts map[summaryKey]int
	native int
	denied int
}

type summaryKey struct {
	req     netstack.Request // the destination's fields only
	verdict netstack.Action
	errno   unix.Errno
	gone    bool
	name    string // the name the program looked the address up by
}

func (s *summary) count(r *logRec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.native {
		if r.syscall != "sendmsg" && r.syscall != "sendmmsg" { // routine sends are not even that
			s.native++
		}
		return
	}
	if s.counts == nil {
		s.counts = map[summaryKey]int{}
	}
	k := summaryKey{verdict: r.action, errno: r.errno, gone: r.gone}
	k.req.Family, k.req.Type, k.req.Addr, k.req.Unix = r.req.Family, r.req.Type, r.req.Addr, r.req.Unix
	k.name = r.req.Name()
	s.counts[k]++
	if r.action == netstack.Deny {
		s.denied++
	}
}

// anyDenied reports whether a call was denied.
func (s *summary) anyDenied() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied > 0
}

// SummaryRow is one line of the summary.
type SummaryRow struct {
	Dst     string `json:"dst"`
	Name    string `json:"name,omitempty"`
	Count   int    `json:"count"`
	Verdict string `json:"verdict"`
	Errno   string `json:"errno"`
}

// rows returns the summary, most frequent first.
func (s *summary) rows() []SummaryRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SummaryRow, 0, len(s.counts))
	for k, n := range s.counts {
		e := errnoName(k.errno)
		if k.gone {
			e = "(no answer: interrupted)"
		}
		out = append(out, SummaryRow{Dst: k.req.Dest(), Name: k.name, Count: n, Verdict: k.verdict.String(), Errno: e})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Dst+out[i].Name+out[i].Verdict+out[i].Errno < out[j].Dst+out[j].Name+out[j].Verdict+out[j].Errno
	})
	return out
}

func (s *summary) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := s.rows()
	named := false
	for _, r := range rows {
		named = named || r.Name != ""
	}
	if named {
		fmt.Fprintln(tw, "DESTINATION\tNAME\tCOUNT\tVERDICT\tERRNO")
	} else {
		fmt.Fprintln(tw, "DESTINATION\tCOUNT\tVERDICT\tERRNO")
	}
	for _, r := range rows {
		e := r.Errno
		if e == "" {
			e = "-"
		}
		if named {
			n := r.Name
			if n == "" {
				n = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Dst, n, r.Count, r.Verdict, e)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Dst, r.Count, r.Verdict, e)
		}
	}
	tw.Flush()
	if s.native > 0 {
		fmt.Fprintf(w, "(not listed: %d calls the kernel answered before any decision, e.g. to a Unix path that does not exist; -vv logs them)\n", s.native)
	}
}

func (s *summary) writeJSON(path string) error {
	b, err := json.MarshalIndent(struct {
		Connects []SummaryRow `json:"connects"`
		Native   int          `json:"native"` // calls answered before any decision, not in connects
	}{s.rows(), s.native}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
