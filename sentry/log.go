package sentry

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// auditLog is the logging middleware around handlers. The receive thread
// only copies the call's facts into a fixed-size record and appends it to a
// batch under a lock; a goroutine formats and writes the batch every
// flushEvery (or at once when it reaches flushAt). Waking a logger for each
// call would cost a cross-CPU wake-up per connect, as much as the rest of
// the round trip. Nothing is ever dropped: Close writes what is left.
//
// Formatting goes through logrus, or, when the logger is one of the two
// formats the sandbox configures (plain text, JSON) with no hooks, through
// an allocation-free encoder that writes exactly the bytes logrus would
// (TestAuditEncoderMatchesLogrus). logrus costs ~10 µs and ~35 allocations
// a record; on a 2-core machine that CPU is taken from the program.
type auditLog struct {
	l    *logrus.Logger
	kick chan struct{} // a full batch
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	batch  []logRec
	closed bool

	// counting is set when a summary may be printed: records are then sent
	// even below the log level, and counted by the goroutine.
	counting bool
	sum      summary
	// observe is Config.Observe: given every decided record.
	observe func(Use)

	// syncDenials: a denial is written before the call is answered, with
	// whatever is pending, so that at a terminal the warning comes before
	// the program's own error message, not in the middle of it.
	syncDenials bool
	// syncStalled: a synchronous write timed out and has not ended yet
	// (recordNow).
	syncStalled atomic.Bool

	// outMu serializes formatting and output; the buffers are under it.
	outMu  sync.Mutex
	enc    encoder // zero: use logrus
	buf    []byte  // output buffer
	scr    []byte  // scratch buffer
	msgs   map[string]*[3]string
	outErr error
	spare  []logRec
	// ts is the last timestamp formatted, for the millisecond tsMs: the
	// default layout has millisecond resolution, and a batch's records
	// mostly share it.
	ts   []byte
	tsMs int64
}

const (
	flushEvery = 20 * time.Millisecond
	flushAt    = 512
)

// LogTimeFormat is RFC 3339 with milliseconds, for text and JSON alike.
const LogTimeFormat = "2006-01-02T15:04:05.000Z07:00"

const logTimeFormat = LogTimeFormat

// Kinds of record, which pick the message.
const (
	kindCall = iota
	kindDenied
	kindInterrupted
)

// logRec is a finished call: facts only, no strings built. The formatter
// renders the fixed fields from it.
type logRec struct {
	at      time.Time // zero for a call's record, whose mono says when
	mono    int64
	latency time.Duration
	req     netstack.Request
	rule    string
	suggest string
	syscall string
	err     error // an internal failure: msg is what failed
	msg     string
	pid     uint32
	fd      int32
	errno   unix.Errno
	level   logrus.Level
	action  netstack.Action
	kind    uint8
	self    bool   // allowed as the tree's own socket
	comm    string // the caller's comm, read only for Config.Observe
	native  bool   // answered before any decision
	gone    bool
	log     bool // at or above the log level (else only counted)
}

func newAuditLog(l *logrus.Logger) *auditLog {
	a := &auditLog{l: l, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	a.enc = fastEncoder(l)
	a.msgs = map[string]*[3]string{}
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
		a.outMu.Lock()
		a.mu.Lock()
		batch, a.batch = a.batch, batch[:0]
		a.mu.Unlock()
		a.writeBatch(batch)
		a.outMu.Unlock()
		clear(batch) // drop the strings the records held
		if stopping {
			return
		}
	}
}

// writeBatch counts and writes records, in one write(2) when the fast
// encoder is in use.
func (a *auditLog) writeBatch(batch []logRec) {
	a.buf = a.buf[:0]
	wc := newWallClock()
	for i := range batch {
		r := &batch[i]
		if r.at.IsZero() {
			r.at = wc.at(r.mono)
		}
		if a.counting && r.err == nil {
			a.sum.count(r)
		}
		if a.observe != nil && r.err == nil && !r.native && !r.gone {
			a.observe(Use{Req: r.req, Action: r.action, Self: r.self, Rule: r.rule, PID: int(r.pid), Comm: r.comm, Syscall: r.syscall, At: r.at})
		}
		if !r.log {
			continue
		}
		if a.enc.kind == encLogrus || len(a.l.Hooks[r.level]) > 0 {
			a.flush()
			a.writeLogrus(r)
			continue
		}
		a.buf = a.appendRec(a.buf, r)
	}
	a.flush()
}

func (a *auditLog) flush() {
	if len(a.buf) == 0 {
		return
	}
	_, err := a.l.Out.Write(a.buf)
	if err != nil && a.outErr == nil {
		a.outErr = err // as logrus does: a failing log output does not stop the sandbox
	}
	a.buf = a.buf[:0]
}

func (a *auditLog) message(r *logRec) string {
	if r.err != nil {
		return r.msg
	}
	m := a.msgs[r.syscall]
	if m == nil {
		m = &[3]string{r.syscall, r.syscall + " denied", r.syscall + " interrupted"}
		a.msgs[r.syscall] = m
	}
	return m[r.kind]
}

func (a *auditLog) writeLogrus(r *logRec) {
	f := logrus.Fields{"syscall": r.syscall, "pid": r.pid}
	if r.err != nil {
		f["error"] = r.err.Error()
		a.l.WithFields(f).WithTime(r.at).Log(r.level, r.msg)
		return
	}
	f["fd"] = r.fd
	f["family"] = r.req.Family.String()
	f["type"] = r.req.Type.String()
	f["dst"] = r.req.Dest()
	if r.req.Written.IsValid() {
		f["dst_written"] = r.req.Written.String() // what the program wrote, resolved to dst
	}
	f["verdict"] = verdictName(r)
	f["errno"] = errnoField(r)
	f["latency"] = r.latency.String()
	if n := r.req.Name(); n != "" {
		f["name"] = n
	}
	if r.rule != "" {
		f["rule"] = r.rule
	}
	if r.suggest != "" {
		f["allow_with"] = r.suggest
	}
	a.l.WithFields(f).WithTime(r.at).Log(r.level, a.message(r))
}

func verdictName(r *logRec) string {
	if r.native {
		return "native"
	}
	return r.action.String()
}

func errnoField(r *logRec) string {
	if r.gone {
		return "(no answer: interrupted)"
	}
	return errnoName(r.errno)
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

func (a *auditLog) send(r *logRec) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.batch = append(a.batch, *r)
	full := len(a.batch) >= flushAt
	a.mu.Unlock()
	if full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// recordNow writes c's record and everything pending at once, for a
// denial that a person should see before the program reacts to it. It
// waits at most syncWait for the write: the log goes to a terminal or a
// pipe that the program may share and stop (Ctrl-S, tcflow(TCOOFF), a
// reader that stopped reading), and a stopped write must not keep the call
// unanswered, nor the receive thread. The write then finishes, in order,
// whenever the output moves again.
func (a *auditLog) recordNow(c *call, o outcome) {
	a.record(c, o)
	stalled := a.syncStalled.Load()
	done := make(chan struct{})
	go func() {
		defer a.syncStalled.Store(false)
		a.outMu.Lock()
		a.mu.Lock()
		a.spare, a.batch = a.batch, a.spare[:0]
		a.mu.Unlock()
		a.writeBatch(a.spare)
		clear(a.spare)
		a.outMu.Unlock()
		close(done)
	}()
	if stalled {
		// The last write is still stopped: this one queues behind it, and
		// the call does not wait 100 ms more. (Whichever write ends clears
		// the mark, so the next denial waits again.)
		return
	}
	t := time.NewTimer(syncWait)
	select {
	case <-done:
	case <-t.C:
		a.syncStalled.Store(true)
	}
	t.Stop()
}

// syncWait bounds how long a denial waits for its record to be written.
const syncWait = 100 * time.Millisecond

// denialFirst reports whether c's record should be written before c is
// answered (see syncDenials).
func (a *auditLog) denialFirst(c *call) bool {
	return a.syncDenials && c.decided && c.dec.Action == netstack.Deny
}

// record is the hot path: what the receive thread pays per finished call.
func (a *auditLog) record(c *call, o outcome) {
	level := logrus.InfoLevel
	kind := uint8(kindCall)
	native := !c.decided
	if c.decided && c.dec.Action == netstack.Deny {
		level, kind = logrus.WarnLevel, kindDenied
	}
	if native {
		// Answered before any decision, as the kernel would (EBADF,
		// EFAULT, a Unix path that does not resolve: glibc's nscd probe):
		// not a decision, so debug. A sendmsg that named no destination
		// is routine traffic on a connected socket: debug too.
		level = logrus.DebugLevel
	}
	if o.gone {
		// A signal or death tore the notification down: normal.
		level, kind = logrus.DebugLevel, kindInterrupted
	}
	log := a.l.IsLevelEnabled(level)
	if !log && !a.counting && a.observe == nil {
		return
	}
	var comm string
	if a.observe != nil && c.decided {
		// Read now: a short-lived caller is gone by the time the log's
		// goroutine sees the record.
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(int(c.n.Pid)) + "/comm")
		comm = strings.TrimSpace(string(b))
	}
	now := nanotime()
	a.send(&logRec{comm: comm,
		mono: now, latency: time.Duration(now - c.startNs), req: c.req, rule: c.dec.Rule, suggest: c.dec.Suggest,
		syscall: c.name, pid: c.n.Pid, fd: c.fd, errno: o.errno, level: level,
		action: c.dec.Action, self: c.dec.Self, kind: kind, native: native, gone: o.gone, log: log,
	})
}

// internal logs a failure of the supervisor itself while serving c.
func (a *auditLog) internal(c *call, what string, err error) {
	a.send(&logRec{at: time.Now(), level: logrus.ErrorLevel, syscall: c.name, pid: c.n.Pid,
		msg: what + " failed", err: err, log: true})
}

// The fast encoder.

const (
	encLogrus = iota
	encText
	encJSON
)

type encoder struct {
	kind   int
	layout string // the timestamp layout
}

// fastEncoder picks the encoder for l: only formatter settings whose output
// it reproduces byte for byte, else logrus itself.
func fastEncoder(l *logrus.Logger) encoder {
	if l.ReportCaller {
		return encoder{}
	}
	switch f := l.Formatter.(type) {
	case *logrus.TextFormatter:
		if !f.DisableColors || f.ForceColors || f.ForceQuote || f.DisableQuote || f.QuoteEmptyFields ||
			f.DisableTimestamp || f.TimestampFormat == "" || f.DisableSorting || f.SortingFunc != nil ||
			f.FieldMap != nil || f.CallerPrettyfier != nil || f.EnvironmentOverrideColors {
			return encoder{}
		}
		return encoder{kind: encText, layout: f.TimestampFormat}
	case *logrus.JSONFormatter:
		if f.TimestampFormat == "" || f.DisableTimestamp || f.DisableHTMLEscape || f.DataKey != "" ||
			f.FieldMap != nil || f.CallerPrettyfier != nil || f.PrettyPrint {
			return encoder{}
		}
		return encoder{kind: encJSON, layout: f.TimestampFormat}
	}
	return encoder{}
}

// appendRec appends one record, with logrus's key order: time, level, msg,
// then the fields sorted by name (text); every key sorted (JSON, as
// encoding/json orders a map).
func (a *auditLog) appendRec(b []byte, r *logRec) []byte {
	var t []byte
	if ms := r.at.UnixMilli(); a.enc.layout == logTimeFormat && ms == a.tsMs && len(a.ts) > 0 {
		t = a.ts
	} else {
		a.ts = appendTime(a.ts[:0], r.at, a.enc.layout)
		a.tsMs, t = ms, a.ts
	}
	lvl := r.level.String()
	msg := a.message(r)
	if a.enc.kind == encJSON {
		return a.appendJSON(b, r, t, lvl, msg)
	}
	b = appendTextKV(b, "time", t, true)
	b = appendTextKVs(b, "level", lvl)
	if msg != "" {
		b = appendTextKVs(b, "msg", msg)
	}
	if r.err != nil {
		b = appendTextKVs(b, "error", r.err.Error())
		b = append(b, " pid="...)
		b = strconv.AppendUint(b, uint64(r.pid), 10)
		b = appendTextKVs(b, "syscall", r.syscall)
		return append(b, '\n')
	}
	if r.suggest != "" {
		b = appendTextKVs(b, "allow_with", r.suggest)
	}
	a.scr = appendDest(a.scr[:0], &r.req)
	b = appendTextKV(b, "dst", a.scr, false)
	if r.req.Written.IsValid() {
		b = appendTextKVs(b, "dst_written", r.req.Written.String())
	}
	b = appendTextKVs(b, "errno", errnoField(r))
	b = appendTextKVs(b, "family", r.req.Family.String())
	b = append(b, " fd="...)
	b = strconv.AppendInt(b, int64(r.fd), 10)
	a.scr = appendDuration(a.scr[:0], r.latency)
	b = appendTextKV(b, "latency", a.scr, false)
	if n := r.req.Name(); n != "" {
		b = appendTextKVs(b, "name", n)
	}
	b = append(b, " pid="...)
	b = strconv.AppendUint(b, uint64(r.pid), 10)
	if r.rule != "" {
		b = appendTextKVs(b, "rule", r.rule)
	}
	b = appendTextKVs(b, "syscall", r.syscall)
	b = appendTextKVs(b, "type", r.req.Type.String())
	b = appendTextKVs(b, "verdict", verdictName(r))
	return append(b, '\n')
}

func (a *auditLog) appendJSON(b []byte, r *logRec, t []byte, lvl, msg string) []byte {
	b = append(b, '{')
	if r.err != nil {
		b = appendJSONKVs(b, "error", r.err.Error(), true)
		b = appendJSONKVs(b, "level", lvl, false)
		b = appendJSONKVs(b, "msg", msg, false)
		b = append(b, `,"pid":`...)
		b = strconv.AppendUint(b, uint64(r.pid), 10)
		b = appendJSONKVs(b, "syscall", r.syscall, false)
		b = appendJSONKV(b, "time", t, false)
		return append(b, "}\n"...)
	}
	first := true
	if r.suggest != "" {
		b = appendJSONKVs(b, "allow_with", r.suggest, true)
		first = false
	}
	a.scr = appendDest(a.scr[:0], &r.req)
	b = appendJSONKV(b, "dst", a.scr, first)
	if r.req.Written.IsValid() {
		b = appendJSONKVs(b, "dst_written", r.req.Written.String(), false)
	}
	b = appendJSONKVs(b, "errno", errnoField(r), false)
	b = appendJSONKVs(b, "family", r.req.Family.String(), false)
	b = append(b, `,"fd":`...)
	b = strconv.AppendInt(b, int64(r.fd), 10)
	a.scr = appendDuration(a.scr[:0], r.latency)
	b = appendJSONKV(b, "latency", a.scr, false)
	b = appendJSONKVs(b, "level", lvl, false)
	b = appendJSONKVs(b, "msg", msg, false)
	if n := r.req.Name(); n != "" {
		b = appendJSONKVs(b, "name", n, false)
	}
	b = append(b, `,"pid":`...)
	b = strconv.AppendUint(b, uint64(r.pid), 10)
	if r.rule != "" {
		b = appendJSONKVs(b, "rule", r.rule, false)
	}
	b = appendJSONKVs(b, "syscall", r.syscall, false)
	b = appendJSONKV(b, "time", t, false)
	b = appendJSONKVs(b, "type", r.req.Type.String(), false)
	b = appendJSONKVs(b, "verdict", verdictName(r), false)
	return append(b, "}\n"...)
}

// appendDest is netstack.Request.Dest without the allocation.
func appendDest(b []byte, r *netstack.Request) []byte {
	switch r.Family {
	case netstack.FamilyInet, netstack.FamilyInet6:
		if r.Type == netstack.TypeDgram {
			b = append(b, "udp:"...)
		} else {
			b = append(b, "tcp:"...)
		}
		if r.Addr == (netip.AddrPort{}) {
			return append(b, "invalid AddrPort"...)
		}
		return r.Addr.AppendTo(b)
	}
	return append(b, r.Dest()...) // Unix and the rest: no concatenation needed for most
}

// appendTextKV appends " key=value" (no space first at the line's start:
// the caller puts time first), quoted as logrus's TextFormatter does.
func appendTextKV(b []byte, key string, v []byte, first bool) []byte {
	if !first {
		b = append(b, ' ')
	}
	b = append(b, key...)
	b = append(b, '=')
	if !needsQuoting(v) {
		return append(b, v...)
	}
	return appendQuote(b, v)
}

func appendTextKVs(b []byte, key, v string) []byte {
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, '=')
	for i := 0; i < len(v); i++ {
		if !safeByte(v[i]) {
			return appendQuote(b, v)
		}
	}
	return append(b, v...)
}

// appendQuote is strconv.AppendQuote (what logrus uses), with a fast path
// for what needs no escape: printable ASCII but " and \, and printable
// UTF-8 (µs).
func appendQuote[S string | []byte](b []byte, s S) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			return strconv.AppendQuote(b, string(s))
		}
		var rb [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(rb[:copy(rb[:], s[i:])])
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return strconv.AppendQuote(b, string(s))
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime formats t, by hand for logTimeFormat: AppendFormat's general
// layout walk was a tenth of a record's cost.
func appendTime(b []byte, t time.Time, layout string) []byte {
	if layout != logTimeFormat {
		return t.AppendFormat(b, layout)
	}
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1e6, 3)
	_, off := t.Zone()
	if off == 0 {
		return append(b, 'Z')
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b = append(b, sign)
	b = appendDigits(b, off/3600, 2)
	b = append(b, ':')
	return appendDigits(b, off/60%60, 2)
}

func appendDigits(b []byte, v, width int) []byte {
	var d [8]byte
	n := len(d)
	for i := 0; i < width || v > 0; i++ {
		n--
		d[n] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[n:]...)
}

func needsQuoting(v []byte) bool {
	for _, c := range v {
		if !safeByte(c) {
			return true
		}
	}
	return false
}

// safeByte is logrus's isSafeByte.
func safeByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '/', '@', '^', '+':
		return true
	}
	return false
}

func appendJSONKV(b []byte, key string, v []byte, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return appendJSONString(b, v)
}

func appendJSONKVs(b []byte, key, v string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return appendJSONString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML escaping (the
// logrus default): <, >, & and U+2028/U+2029 escaped, invalid UTF-8 as
// U+FFFD.
func appendJSONString[S string | []byte](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		var rb [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(rb[:copy(rb[:], s[i:])])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendDuration is time.Duration.String without the allocation.
func appendDuration(b []byte, d time.Duration) []byte {
	var arr [32]byte
	n := len(arr)
	u := uint64(d)
	neg := d < 0
	if neg {
		u = -u
	}
	if u < uint64(time.Second) {
		var prec int
		n--
		arr[n] = 's'
		n--
		switch {
		case u == 0:
			return append(b, "0s"...)
		case u < uint64(time.Microsecond):
			prec = 0
			arr[n] = 'n'
		case u < uint64(time.Millisecond):
			prec = 3
			n--
			copy(arr[n:], "µ")
		default:
			prec = 6
			arr[n] = 'm'
		}
		n, u = fmtFrac(arr[:n], u, prec)
		n = fmtInt(arr[:n], u)
	} else {
		n--
		arr[n] = 's'
		n, u = fmtFrac(arr[:n], u, 9)
		n = fmtInt(arr[:n], u%60)
		u /= 60
		if u > 0 {
			n--
			arr[n] = 'm'
			n = fmtInt(arr[:n], u%60)
			u /= 60
			if u > 0 {
				n--
				arr[n] = 'h'
				n = fmtInt(arr[:n], u)
			}
		}
	}
	if neg {
		n--
		arr[n] = '-'
	}
	return append(b, arr[n:]...)
}

// fmtFrac and fmtInt are the time package's.
func fmtFrac(buf []byte, v uint64, prec int) (nw int, nv uint64) {
	w := len(buf)
	print := false
	for i := 0; i < prec; i++ {
		digit := v % 10
		print = print || digit != 0
		if print {
			w--
			buf[w] = byte(digit) + '0'
		}
		v /= 10
	}
	if print {
		w--
		buf[w] = '.'
	}
	return w, v
}

func fmtInt(buf []byte, v uint64) int {
	w := len(buf)
	if v == 0 {
		w--
		buf[w] = '0'
	} else {
		for v > 0 {
			w--
			buf[w] = byte(v%10) + '0'
			v /= 10
		}
	}
	return w
}
