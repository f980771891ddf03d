package sentry

import (
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"sandbox/netstack"
)

// auditLog is the logging middleware around handlers. Formatting happens on
// its own goroutine so the receive loop only pays for a channel send; the
// channel is bounded and blocks when full, so no record is ever dropped.
type auditLog struct {
	l    *logrus.Logger
	ch   chan logRec
	done chan struct{}
	// mu orders sends against Close: senders hold it shared.
	mu     sync.RWMutex
	closed bool
	// summarize is set when a summary was asked for: building its key
	// costs a string per call.
	summarize bool
	sum       summary
}

// logRec is a finished call, with the fixed field names of the log.
type logRec struct {
	level   logrus.Level
	syscall string
	pid     uint32
	fd      int32
	family  string
	typ     string
	dst     string
	verdict string
	rule    string
	suggest string
	errno   string
	latency time.Duration
	msg     string
	err     error
}

func newAuditLog(l *logrus.Logger) *auditLog {
	a := &auditLog{l: l, ch: make(chan logRec, 4096), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *auditLog) run() {
	defer close(a.done)
	for r := range a.ch {
		f := logrus.Fields{"syscall": r.syscall, "pid": r.pid}
		if r.err != nil {
			f["error"] = r.err.Error()
			a.l.WithFields(f).Log(r.level, r.msg)
			continue
		}
		f["fd"] = r.fd
		f["family"] = r.family
		f["type"] = r.typ
		f["dst"] = r.dst
		f["verdict"] = r.verdict
		f["errno"] = r.errno
		f["latency"] = r.latency.String()
		if r.rule != "" {
			f["rule"] = r.rule
		}
		if r.suggest != "" {
			f["allow_with"] = r.suggest
		}
		a.l.WithFields(f).Log(r.level, r.msg)
	}
}

// Close flushes every pending record. Records sent afterwards are dropped:
// the process is exiting.
func (a *auditLog) Close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.ch)
	}
	a.mu.Unlock()
	<-a.done
}

func (a *auditLog) send(r logRec) {
	a.mu.RLock()
	if !a.closed {
		a.ch <- r
	}
	a.mu.RUnlock()
}

func (a *auditLog) record(c *call, o outcome) {
	level := logrus.InfoLevel
	msg := c.name
	verdict := "allow"
	if c.decided {
		verdict = c.dec.Action.String()
		if c.dec.Action == netstack.Deny {
			level = logrus.WarnLevel
			msg = c.name + " denied"
		}
	} else {
		// Answered before any decision: an argument error the kernel would
		// give natively (EBADF, EFAULT, ...).
		verdict = "native"
	}
	if o.gone {
		// A signal or death tore the notification down: normal.
		level = logrus.DebugLevel
		msg = c.name + " interrupted"
	}
	e := errnoName(o.errno)
	if o.gone {
		e = "(no answer: interrupted)"
	}
	if a.summarize {
		a.sum.add(summaryKey{Dst: c.req.Dest(), Verdict: verdict, Errno: e})
	}
	if !a.l.IsLevelEnabled(level) {
		return
	}
	a.send(logRec{
		level: level, syscall: c.name, pid: c.n.Pid, fd: c.fd,
		family: c.req.Family.String(), typ: c.req.Type.String(), dst: c.req.Dest(),
		verdict: verdict, rule: c.dec.Rule, errno: e, latency: time.Since(c.start), msg: msg,
		suggest: c.dec.Suggest,
	})
}

// internal logs a failure of the supervisor itself while serving c.
func (a *auditLog) internal(c *call, what string, err error) {
	a.send(logRec{level: logrus.ErrorLevel, syscall: c.name, pid: c.n.Pid, msg: what + " failed", err: err})
}
