package sentry

// The init stage itself is C (initstage.c), started by Start (launch.go).
// This file gives tests the C side's errno texts.

/*
#include "initstage.h"
*/
import "C"

// cErrstr is the C stage's text for an errno.
func cErrstr(e int) string { return C.GoString(C.sandbox_errstr(C.int(e))) }
