package sentry

import (
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"sandbox/netstack"
)

// auditLog is the logging middleware around handlers. Records are appended
// to a batch under a lock, and a goroutine formats and writes them every
// flushEvery (or at once when the batch reaches flushAt). Waking a logger
// for each call would cost a cross-CPU wake-up per connect, as much as the
// rest of the round trip. Nothing is ever dropped: Close writes what is left.
type auditLog struct {
	l    *logrus.Logger
	kick chan struct{} // a full batch
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	batch  []logRec
	closed bool
	// summarize is set when a summary was asked for: building its key
	// costs a string per call.
	summarize bool
	sum       summary
}

const (
	flushEvery = 20 * time.Millisecond
	flushAt    = 512
)

// logRec is a finished call, with the fixed field names of the log.
type logRec struct {
	level   logrus.Level
	syscall string
	pid     uint32
	fd      int32
	family  string
	typ     string
	dst     string
	written string // the destination as written, when it was resolved
	verdict string
	rule    string
	suggest string
	errno   string
	latency time.Duration
	msg     string
	err     error
}

func newAuditLog(l *logrus.Logger) *auditLog {
	a := &auditLog{l: l, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *auditLog) run() {
	defer close(a.done)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	var batch []logRec
	for {
		stopping := false
		select {
		case <-tick.C:
		case <-a.kick:
		case <-a.stop:
			stopping = true
		}
		a.mu.Lock()
		batch, a.batch = a.batch, batch[:0]
		a.mu.Unlock()
		for i := range batch {
			a.write(&batch[i])
		}
		if stopping {
			return
		}
	}
}

func (a *auditLog) write(r *logRec) {
	f := logrus.Fields{"syscall": r.syscall, "pid": r.pid}
	if r.err != nil {
		f["error"] = r.err.Error()
		a.l.WithFields(f).Log(r.level, r.msg)
		return
	}
	f["fd"] = r.fd
	f["family"] = r.family
	f["type"] = r.typ
	f["dst"] = r.dst
	if r.written != "" {
		f["dst_written"] = r.written
	}
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

// Close writes every pending record. Records sent afterwards are dropped:
// the process is exiting.
func (a *auditLog) Close() {
	a.mu.Lock()
	already := a.closed
	a.closed = true
	a.mu.Unlock()
	if !already {
		close(a.stop)
	}
	<-a.done
}

func (a *auditLog) send(r logRec) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.batch = append(a.batch, r)
	full := len(a.batch) >= flushAt
	a.mu.Unlock()
	if full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
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
	// A sendmsg that named no destination is routine traffic on a
	// connected socket, trapped only because the filter cannot see
	// msg_name: debug level, and not in the summary.
	routine := !c.decided && (c.name == "sendmsg" || c.name == "sendmmsg")
	if routine {
		level = logrus.DebugLevel
	}
	e := errnoName(o.errno)
	if o.gone {
		e = "(no answer: interrupted)"
	}
	if a.summarize && !routine {
		a.sum.add(summaryKey{Dst: c.req.Dest(), Verdict: verdict, Errno: e})
	}
	if !a.l.IsLevelEnabled(level) {
		return
	}
	written := ""
	if c.req.Written.IsValid() {
		written = c.req.Written.String()
	}
	a.send(logRec{
		written: written, level: level, syscall: c.name, pid: c.n.Pid, fd: c.fd,
		family: c.req.Family.String(), typ: c.req.Type.String(), dst: c.req.Dest(),
		verdict: verdict, rule: c.dec.Rule, errno: e, latency: time.Since(c.start), msg: msg,
		suggest: c.dec.Suggest,
	})
}

// internal logs a failure of the supervisor itself while serving c.
func (a *auditLog) internal(c *call, what string, err error) {
	a.send(logRec{level: logrus.ErrorLevel, syscall: c.name, pid: c.n.Pid, msg: what + " failed", err: err})
}
