package sentry

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// The fast encoder writes exactly what logrus's formatter would, for text
// and JSON, whatever the record holds.
func TestAuditEncoderMatchesLogrus(t *testing.T) {
	strs := []string{"", "plain", "with space", `quo"te`, `back\slash`, "tab\there", "nl\nx", "µs", "é/ü",
		"<html>&", "\x00nul", "\x7f", "\xff\xfe", "\u2028\u2029", "\b\f\r", "--allow tcp:127.0.0.1:80", "a=b"}
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
	var recs []logRec
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		r := logRec{
			at:      time.Date(2020+rng.Intn(10), time.Month(1+rng.Intn(12)), 1+rng.Intn(28), rng.Intn(24), rng.Intn(60), rng.Intn(60), rng.Intn(1e9), zones[rng.Intn(len(zones))]),
			latency: time.Duration(rng.Int63n(1 << uint(rng.Intn(50)+1))),
			syscall: []string{"connect", "sendto", "sendmsg"}[rng.Intn(3)],
			pid:     rng.Uint32(), fd: int32(rng.Intn(2000) - 1),
			errno: unix.Errno(rng.Intn(140)), level: logrus.Level(2 + rng.Intn(4)),
			action: netstack.Action(rng.Intn(6)), kind: uint8(rng.Intn(3)),
			native: rng.Intn(4) == 0, gone: rng.Intn(8) == 0, log: true,
			rule: strs[rng.Intn(len(strs))], suggest: strs[rng.Intn(len(strs))],
		}
		switch rng.Intn(5) {
		case 0:
			r.req = netstack.Request{Family: netstack.FamilyInet, Type: netstack.TypeStream, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), uint16(i))}
			if i%2 == 0 { // resolved from an unspecified destination
				r.req.Written = netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(i))
			}
		case 1:
			r.req = netstack.Request{Family: netstack.FamilyInet6, Type: netstack.TypeDgram, Addr: netip.MustParseAddrPort("[fe80::1%eth0]:53")}
		case 2:
			r.req = netstack.Request{Family: netstack.FamilyUnix, Type: netstack.TypeStream, Unix: netstack.UnixAddr{Path: "/run/" + strs[rng.Intn(len(strs))]}}
		case 3:
			r.req = netstack.Request{Family: netstack.FamilyUnix, Type: netstack.TypeSeqpacket, Unix: netstack.UnixAddr{Abstract: true, Name: strs[rng.Intn(len(strs))]}}
		default:
			r.req = netstack.Request{Family: netstack.FamilyInet}
		}
		if rng.Intn(10) == 0 {
			r = logRec{at: r.at, level: logrus.ErrorLevel, syscall: r.syscall, pid: r.pid, msg: "respond failed",
				err: errors.New(strs[rng.Intn(len(strs))]), log: true}
		}
		recs = append(recs, r)
	}
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var fast, slow bytes.Buffer
			l := benchLogger(format)
			l.SetOutput(&fast)
			l.SetLevel(logrus.TraceLevel)
			a := newAuditLog(l)
			a.Close()
			if a.enc.kind == encLogrus {
				t.Fatal("the sandbox's own formatter is not on the fast path")
			}
			a.writeBatch(recs)
			l.SetOutput(&slow)
			for i := range recs {
				a.writeLogrus(&recs[i])
			}
			f, s := strings.Split(fast.String(), "\n"), strings.Split(slow.String(), "\n")
			if len(f) != len(s) {
				t.Fatalf("%d lines, logrus %d", len(f), len(s))
			}
			for i := range f {
				if f[i] != s[i] {
					t.Fatalf("record %d:\nfast   %s\nlogrus %s", i, f[i], s[i])
				}
			}
		})
	}
}

// Settings the encoder does not reproduce go through logrus.
func TestAuditEncoderFallsBack(t *testing.T) {
	l := logrus.New()
	l.SetFormatter(&logrus.TextFormatter{ForceColors: true, TimestampFormat: logTimeFormat})
	if fastEncoder(l).kind != encLogrus {
		t.Error("coloured text on the fast path")
	}
	l.SetFormatter(&logrus.JSONFormatter{PrettyPrint: true, TimestampFormat: logTimeFormat})
	if fastEncoder(l).kind != encLogrus {
		t.Error("pretty JSON on the fast path")
	}
}

// stuckWriter is an output that stops, as a terminal under Ctrl-S does.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// A denial written before its answer (syncDenials) waits for a stopped
// output at most syncWait, the later ones not at all while it stays
// stopped, and every record is written once the output moves again.
func TestRecordNowDoesNotWaitForAStoppedOutput(t *testing.T) {
	w := stuckWriter{release: make(chan struct{})}
	var got bytes.Buffer
	l := logrus.New()
	l.SetLevel(logrus.InfoLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableColors: true})
	l.SetOutput(io.MultiWriter(w, &got))
	a := newAuditLog(l)
	a.syncDenials = true
	c := &call{name: "connect", decided: true, dec: netstack.Decision{Action: netstack.Deny}}
	start := time.Now()
	for range 10 {
		a.recordNow(c, ret(unix.EACCES))
	}
	if d := time.Since(start); d > 6*syncWait {
		t.Fatalf("ten denials took %v with the output stopped (want about %v for the first, none for the others)", d, syncWait)
	}
	close(w.release)
	a.Close()
	if n := strings.Count(got.String(), "connect denied"); n != 10 {
		t.Fatalf("%d of 10 denial records written once the output moved:\n%s", n, got.String())
	}
}
