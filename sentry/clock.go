package sentry

import (
	"time"
	_ "unsafe" // go:linkname
)

// The hot path reads the clock three times per call (before and after the
// receive, and when the record is made). time.Now reads it twice (wall and
// monotonic: two vDSO calls); the calls need only the monotonic clock, and
// the log's wall time is derived from it when a batch is written
// (wallOf), so each read is one vDSO call.

// nanotime is the runtime's monotonic clock, the one time.Now's monotonic
// reading comes from (runtime.nanotime is among the symbols the runtime
// keeps linkable).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// startTime is the call's start as a time.Time, for deadlines.
func (c *call) startTime() time.Time {
	return time.Now().Add(-time.Duration(nanotime() - c.startNs))
}

// wallClock converts monotonic readings to wall time, from one time.Now
// taken when the batch is written: a record is at most a batch old, so
// the wall clock's steps meanwhile do not matter.
type wallClock struct {
	wall time.Time
	mono int64
}

func newWallClock() wallClock { return wallClock{time.Now(), nanotime()} }

func (w wallClock) at(mono int64) time.Time {
	return w.wall.Add(time.Duration(mono - w.mono))
}
