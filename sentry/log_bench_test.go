package sentry

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

func benchCall() *call {
	c := &call{name: "connect", fd: 5, startNs: nanotime(), decided: true}
	c.n.Pid = 4242
	c.req = netstack.Request{Family: netstack.FamilyInet, Type: netstack.TypeStream,
		Addr: netip.MustParseAddrPort("127.0.0.1:8080")}
	c.dec = netstack.Decision{Action: netstack.Allow, Rule: "--allow tcp:127.0.0.1:8080"}
	return c
}

func benchLogger(format string) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.InfoLevel)
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: logTimeFormat})
	} else {
		l.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true, TimestampFormat: logTimeFormat})
	}
	return l
}

// BenchmarkAuditRecord is what the receive thread pays per logged call:
// building the record and queueing it. The formatting goroutine is stopped
// and the batch emptied as it would be, so that only the receive thread's
// share is measured.
func BenchmarkAuditRecord(b *testing.B) {
	a := newAuditLog(benchLogger("text"))
	a.Close()
	a.closed = false
	c := benchCall()
	o := outcome{errno: unix.ECONNREFUSED}
	b.ReportAllocs()
	for b.Loop() {
		a.record(c, o)
		if len(a.batch) >= flushAt {
			a.batch = a.batch[:0]
		}
	}
}

// BenchmarkAuditFormat is the formatting goroutine's cost per record, in
// batches of 64 records made a microsecond apart.
func BenchmarkAuditFormat(b *testing.B) {
	const n = 64
	for _, f := range []string{"text", "json"} {
		b.Run(f, func(b *testing.B) {
			a := newAuditLog(benchLogger(f))
			defer a.Close()
			c := benchCall()
			a.record(c, outcome{errno: unix.ECONNREFUSED})
			a.mu.Lock()
			batch := make([]logRec, n)
			for i := range batch {
				batch[i] = a.batch[0]
				batch[i].mono += int64(i) * 1000
			}
			a.batch = a.batch[:0]
			a.mu.Unlock()
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					batch[i].at = time.Time{} // derived again, as each batch's are
				}
				a.writeBatch(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
