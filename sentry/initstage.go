package sentry

// The init stage itself is C (initstage.c), run by a constructor before the
// Go runtime starts. This file gives the Go side, and its tests, the C
// side's names and parsers.

/*
#include <stdlib.h>
#include "initstage.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// cInitArg and cSignalsEnv are the C side's spellings of InitArg and
// signalsEnv (a test keeps them equal).
var cInitArg, cSignalsEnv = C.SANDBOX_INIT_ARG, C.SANDBOX_SIGNALS_ENV

// cDecodeOptions is the C stage's reading of initOptions.encode.
func cDecodeOptions(s string) (initOptions, error) {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	var o C.struct_sb_options
	if C.sandbox_decode_options(cs, &o) != 0 {
		return initOptions{}, errors.New("bad options")
	}
	return initOptions{
		LayerOptions: LayerOptions{Landlock: o.landlock != 0, AllowUserns: o.userns != 0,
			KeepCaps: o.keepcaps != 0, PreserveFDs: int(o.preserve)},
		RawSockets: o.raw != 0, Conn: int(o.conn),
	}, nil
}

// cErrstr is the C stage's text for an errno.
func cErrstr(e int) string { return C.GoString(C.sandbox_errstr(C.int(e))) }
