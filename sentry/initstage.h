// Shared by the C init stage (initstage.c) and its Go side (initstage.go).
#define SANDBOX_INIT_ARG "__sandbox_init__"
#define SANDBOX_SIGNALS_ENV "SANDBOX_INIT_SIGNALS"

// The options argument (initOptions.encode): RAW,LANDLOCK,USERNS,KEEPCAPS,N,CONN.
struct sb_options {
	int raw, landlock, userns, keepcaps;
	long preserve, conn;
};

int sandbox_decode_options(const char *s, struct sb_options *o);
const char *sandbox_errstr(int e);
