package sentry

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"text/tabwriter"
)

// summary counts finished calls by destination, verdict and errno, for
// --summary and --summary-json.
type summary struct {
	mu     sync.Mutex
	counts map[summaryKey]int
}

type summaryKey struct{ Dst, Verdict, Errno string }

// SummaryRow is one line of the summary.
type SummaryRow struct {
	Dst     string `json:"dst"`
	Count   int    `json:"count"`
	Verdict string `json:"verdict"`
	Errno   string `json:"errno"`
}

func (s *summary) add(k summaryKey) {
	s.mu.Lock()
	if s.counts == nil {
		s.counts = map[summaryKey]int{}
	}
	s.counts[k]++
	s.mu.Unlock()
}

// rows returns the summary, most frequent first.
func (s *summary) rows() []SummaryRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SummaryRow, 0, len(s.counts))
	for k, n := range s.counts {
		out = append(out, SummaryRow{Dst: k.Dst, Count: n, Verdict: k.Verdict, Errno: k.Errno})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Dst+out[i].Verdict+out[i].Errno < out[j].Dst+out[j].Verdict+out[j].Errno
	})
	return out
}

func (s *summary) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tCOUNT\tVERDICT\tERRNO")
	for _, r := range s.rows() {
		e := r.Errno
		if e == "" {
			e = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Dst, r.Count, r.Verdict, e)
	}
	tw.Flush()
}

func (s *summary) writeJSON(path string) error {
	b, err := json.MarshalIndent(struct {
		Connects []SummaryRow `json:"connects"`
	}{s.rows()}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
