/* args: argument errors of connect(2) and the order in which Linux checks
 * them: the descriptor first, then the address length and the copy of the
 * address, then whether the file is a socket, then the family's own checks. */
#include "probe.h"
#include <sys/resource.h>

static struct sockaddr_in ok4;	/* a listener on 127.0.0.1 */
static struct sockaddr_in6 ok6; /* a listener on ::1 */
static int lfd4, lfd6;

static int tcp4(void) { return xsocket(AF_INET, SOCK_STREAM); }
static int udp4(void) { return xsocket(AF_INET, SOCK_DGRAM); }
static int tcp6(void) { return xsocket(AF_INET6, SOCK_STREAM); }

/* FRESH connects a fresh TCP socket of the given family and
 * closes it, yielding the result. */
#define FRESH(family, addr, len)                                 \
	({                                                       \
		int s_ = xsocket((family), SOCK_STREAM);         \
		errno = 0;                                       \
		int r_ = connect(s_, (const void *)(addr), (len)); \
		int e_ = errno;                                  \
		close(s_);                                       \
		errno = e_;                                      \
		r_;                                              \
	})

static void descriptors(void)
{
	int p[2], fd, un;
	struct sockaddr_un sun;
	socklen_t sunlen;

	CASE("args.fd_9999", connect(9999, &ok4, sizeof ok4));
	CASE("args.fd_minus1", connect(-1, &ok4, sizeof ok4));
	CASE("args.fd_int_min", connect(-2147483647 - 1, &ok4, sizeof ok4));

	/* A socket on a high descriptor number. */
	{
		struct rlimit rl = {20000, 20000};
		int s = tcp4();

		setrlimit(RLIMIT_NOFILE, &rl);
		fd = dup3(s, 19999, O_CLOEXEC);
		close(s);
		CASE("args.fd_19999_socket", connect(fd, &ok4, sizeof ok4), "dup=%d peer=%s",
		     fd == 19999, peer_is(fd, &ok4, sizeof ok4));
		close(fd);
		CASE("args.fd_19999_closed", connect(19999, &ok4, sizeof ok4));
		CASE("args.fd_above_rlimit", connect(20000, &ok4, sizeof ok4));
	}

	fd = tcp4();
	close(fd);
	CASE("args.fd_closed_socket", connect(fd, &ok4, sizeof ok4));

	fd = open("/", O_PATH | O_CLOEXEC);
	CASE("args.fd_opath_dir", connect(fd, &ok4, sizeof ok4));
	close(fd);

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	CASE("args.fd_pipe", connect(p[0], &ok4, sizeof ok4));
	close(p[0]);
	close(p[1]);

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CASE("args.fd_devnull", connect(fd, &ok4, sizeof ok4));
	close(fd);

	fd = open(path_in("regular"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	CASE("args.fd_regular_file", connect(fd, &ok4, sizeof ok4));
	close(fd);

	fd = open(probe_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CASE("args.fd_directory", connect(fd, &ok4, sizeof ok4));
	close(fd);

	/* An O_PATH descriptor of a listening Unix socket's file. */
	un = xsocket(AF_UNIX, SOCK_STREAM);
	sunlen = sun_path_addr(&sun, path_in("opath.sock"));
	if (bind(un, (void *)&sun, sunlen) < 0 || listen(un, 8) < 0)
		die("unix listener");
	fd = open(sun.sun_path, O_PATH | O_CLOEXEC);
	CASE("args.fd_opath_socket_file", connect(fd, &sun, sunlen));
	CASE("args.fd_opath_socket_file_inet_addr", connect(fd, &ok4, sizeof ok4));
	close(fd);
	/* The same file opened for real: a socket file cannot be opened. */
	CASE("args.open_socket_file", open(sun.sun_path, O_RDWR | O_CLOEXEC));
	close(un);
}

static void addresses(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *two, *none, *ro;
	int s;

	/* Two pages, the second unmapped: anything crossing into it faults. */
	two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (two == MAP_FAILED)
		die("mmap");
	munmap(two + pg, pg);

	s = tcp4();
	CASE("args.addr_null_len16", connect(s, NULL, 16));
	CASE("args.addr_null_len0", connect(s, NULL, 0));
	CASE("args.addr_one_len16", connect(s, (void *)1, 16));
	CASE("args.addr_unmapped_page", connect(s, (void *)(two + pg), 16));
	CASE("args.addr_kernel", connect(s, (void *)0xffffffff81000000UL, 16));
	CASE("args.addr_noncanonical", connect(s, (void *)0x0000800000000000UL, 16));

	none = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (none == MAP_FAILED)
		die("mmap");
	CASE("args.addr_prot_none", connect(s, (void *)none, 16));

	/* A sockaddr_in whose last 8 bytes lie in the unmapped page. */
	memcpy(two + pg - 8, &ok4, 8);
	CASE("args.addr_straddle_len16", connect(s, (void *)(two + pg - 8), 16));
	/* The same start with a length that stays inside the mapped page:
	 * the copy succeeds, the length is then too short. */
	CASE("args.addr_straddle_len8", connect(s, (void *)(two + pg - 8), 8));
	/* Exactly filling the mapped page: copied and connected. */
	memcpy(two + pg - 16, &ok4, 16);
	CASE("args.addr_page_end_len16", connect(s, (void *)(two + pg - 16), 16),
	     "peer=%s", peer_is(s, &ok4, sizeof ok4));
	close(s);

	/* A read-only page is enough: connect only reads the address. */
	ro = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED)
		die("mmap");
	memcpy(ro, &ok4, sizeof ok4);
	mprotect(ro, pg, PROT_READ);
	s = tcp4();
	CASE("args.addr_readonly_page", connect(s, (void *)ro, sizeof ok4),
	     "peer=%s", peer_is(s, &ok4, sizeof ok4));
	close(s);

	/* A length too long for any family is refused before the copy. */
	s = tcp4();
	CASE("args.addr_unmapped_len129", connect(s, (void *)(two + pg), 129));
	CASE("args.addr_null_len_minus1", connect(s, NULL, (socklen_t)-1));
	close(s);

	/* A file mapping beyond the end of its (empty) file. */
	{
		int fd = open(path_in("empty"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		char *eof = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);

		if (eof == MAP_FAILED)
			die("mmap file");
		s = tcp4();
		CASE("args.addr_beyond_eof", connect(s, (void *)eof, 16));
		close(s);
		munmap(eof, pg);
		close(fd);
	}

	munmap(two, pg);
	munmap(none, pg);
	munmap(ro, pg);
	drain(lfd4);
}

static void lengths(void)
{
	static char big[256];
	static const struct {
		const char *name;
		socklen_t len;
	} lens[] = {
		{"args.inet_addrlen_0", 0},
		{"args.inet_addrlen_1", 1},
		{"args.inet_addrlen_2", 2},
		{"args.inet_addrlen_8", 8},
		{"args.inet_addrlen_15", 15},
		{"args.inet_addrlen_16", 16},
		{"args.inet_addrlen_17", 17},
		{"args.inet_addrlen_28", 28},
		{"args.inet_addrlen_128", 128},
		{"args.inet_addrlen_129", 129},
		{"args.inet_addrlen_4096", 4096},
		{"args.inet_addrlen_0x7fffffff", 0x7fffffff},
		{"args.inet_addrlen_0x80000000", 0x80000000u},
		{"args.inet_addrlen_minus1", (socklen_t)-1},
	};
	static const struct {
		const char *name;
		socklen_t len;
	} lens6[] = {
		{"args.inet6_addrlen_0", 0},
		{"args.inet6_addrlen_2", 2},
		{"args.inet6_addrlen_16", 16},
		{"args.inet6_addrlen_23", 23},
		{"args.inet6_addrlen_24", 24},
		{"args.inet6_addrlen_27", 27},
		{"args.inet6_addrlen_28", 28},
		{"args.inet6_addrlen_128", 128},
		{"args.inet6_addrlen_129", 129},
		{"args.inet6_addrlen_minus1", (socklen_t)-1},
	};
	size_t i;

	memcpy(big, &ok4, sizeof ok4);
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++)
		CASE(lens[i].name, FRESH(AF_INET, big, lens[i].len));
	memcpy(big, &ok6, sizeof ok6);
	for (i = 0; i < sizeof lens6 / sizeof lens6[0]; i++)
		CASE(lens6[i].name, FRESH(AF_INET6, big, lens6[i].len));
	drain(lfd4);
	drain(lfd6);
}

static void families(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 v6 = ok6;
	struct sockaddr_in v4 = ok4;
	int s, one = 1;

	CASE("args.inet_sock_inet6_addr", FRESH(AF_INET, &v6, sizeof v6));
	v4.sin_family = AF_UNIX;
	CASE("args.inet_sock_family_unix", FRESH(AF_INET, &v4, sizeof v4));
	v4.sin_family = 0xffff;
	CASE("args.inet_sock_family_ffff", FRESH(AF_INET, &v4, sizeof v4));
	v4.sin_family = AF_INET6;
	CASE("args.inet_sock_family_inet6_len16", FRESH(AF_INET, &v4, sizeof v4));

	CASE("args.inet6_sock_inet_addr_len16", FRESH(AF_INET6, &ok4, sizeof ok4));
	/* An AF_INET address, padded to the IPv6 length, on an IPv6 socket. */
	memset(&ss, 0, sizeof ss);
	memcpy(&ss, &ok4, sizeof ok4);
	s = tcp6();
	CASE("args.inet6_sock_inet_addr_len28", connect(s, (void *)&ss, sizeof(struct sockaddr_in6)),
	     "peer=%s", addr_str(s, 1));
	close(s);
	s = tcp6();
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	CASE("args.inet6_v6only_sock_inet_addr_len28",
	     connect(s, (void *)&ss, sizeof(struct sockaddr_in6)));
	close(s);
	v6.sin6_family = AF_UNIX;
	CASE("args.inet6_sock_family_unix", FRESH(AF_INET6, &v6, sizeof v6));

	/* UDP checks the same things in its own order. */
	s = udp4();
	CASE("args.udp_addrlen_15", connect(s, &ok4, 15));
	CASE("args.udp_addrlen_1", connect(s, &ok4, 1));
	CASE("args.udp_addr_null_len16", connect(s, NULL, 16));
	CASE("args.udp_inet6_addr", connect(s, &ok6, sizeof ok6));
	v4 = ok4;
	v4.sin_family = AF_UNIX;
	CASE("args.udp_family_unix", connect(s, &v4, sizeof v4));
	close(s);

	/* Unix sockets. */
	{
		struct sockaddr_un sun;
		socklen_t len = sun_path_addr(&sun, path_in("nothing"));
		char big[256];

		memset(big, 0, sizeof big);
		memcpy(big, &sun, sizeof sun);
		s = xsocket(AF_UNIX, SOCK_STREAM);
		CASE("args.unix_addrlen_0", connect(s, &sun, 0));
		CASE("args.unix_addrlen_1", connect(s, &sun, 1));
		CASE("args.unix_addrlen_2", connect(s, &sun, 2));
		CASE("args.unix_addrlen_110", connect(s, (void *)big, 110));
		CASE("args.unix_addrlen_111", connect(s, (void *)big, 111));
		CASE("args.unix_addrlen_129", connect(s, (void *)big, 129));
		CASE("args.unix_addr_null", connect(s, NULL, len));
		CASE("args.unix_inet_addr", connect(s, &ok4, sizeof ok4));
		close(s);
		s = xsocket(AF_UNIX, SOCK_DGRAM);
		CASE("args.unix_dgram_addrlen_1", connect(s, &sun, 1));
		CASE("args.unix_dgram_addrlen_2", connect(s, &sun, 2));
		CASE("args.unix_dgram_inet_addr", connect(s, &ok4, sizeof ok4));
		CASE("args.unix_dgram_addr_null", connect(s, NULL, len));
		close(s);
	}
	drain(lfd4);
	drain(lfd6);
}

static void order(void)
{
	int p[2], s, l, opath;
	struct sockaddr_in6 v6 = ok6;
	struct sockaddr_in v4 = ok4;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	opath = open("/", O_PATH | O_CLOEXEC);

	/* A bad descriptor wins over everything. */
	CASE("args.order_badfd_null_addr", connect(9999, NULL, 16));
	CASE("args.order_badfd_len129", connect(9999, &ok4, 129));
	CASE("args.order_badfd_len0", connect(9999, NULL, 0));
	CASE("args.order_opath_null_addr", connect(opath, NULL, 16));
	CASE("args.order_opath_len_minus1", connect(opath, &ok4, (socklen_t)-1));

	/* For a non-socket, the address is copied before the file is looked
	 * at. */
	CASE("args.order_pipe_len129", connect(p[0], &ok4, 129));
	CASE("args.order_pipe_null_addr", connect(p[0], NULL, 16));
	CASE("args.order_pipe_len0", connect(p[0], NULL, 0));
	CASE("args.order_pipe_len1", connect(p[0], &ok4, 1));
	CASE("args.order_pipe_inet6_addr", connect(p[0], &ok6, sizeof ok6));

	/* A connected TCP socket. */
	s = tcp4();
	if (connect(s, &ok4, sizeof ok4) < 0)
		die("connect");
	CASE("args.order_connected_len129", connect(s, &ok4, 129));
	CASE("args.order_connected_null_addr", connect(s, NULL, 16));
	CASE("args.order_connected_len0", connect(s, &ok4, 0));
	CASE("args.order_connected_len1", connect(s, &ok4, 1));
	CASE("args.order_connected_len8", connect(s, &ok4, 8));
	CASE("args.order_connected_inet6_addr", connect(s, &v6, sizeof v6));
	v4.sin_family = AF_UNIX;
	CASE("args.order_connected_family_unix", connect(s, &v4, sizeof v4));
	CASE("args.order_connected_same_addr", connect(s, &ok4, sizeof ok4));
	close(s);

	/* A listening TCP socket. */
	l = inet_sock("127.0.0.1", SOCK_STREAM, 8, NULL);
	CASE("args.order_listening_valid", connect(l, &ok4, sizeof ok4));
	CASE("args.order_listening_len8", connect(l, &ok4, 8));
	CASE("args.order_listening_inet6_addr", connect(l, &ok6, sizeof ok6));
	CASE("args.order_listening_null_addr", connect(l, NULL, 16));
	close(l);

	/* An unconnected TCP socket: the length before the family. */
	s = tcp4();
	CASE("args.order_inet_len8_family_inet6", connect(s, &ok6, 8));
	CASE("args.order_inet_len15_family_unix", connect(s, &v4, 15));
	close(s);
	s = tcp6();
	v6.sin6_family = AF_UNIX;
	CASE("args.order_inet6_len20_family_unix", connect(s, &v6, 20));
	CASE("args.order_inet6_len24_family_unix", connect(s, &v6, 24));
	close(s);

	close(p[0]);
	close(p[1]);
	close(opath);
	drain(lfd4);
	drain(lfd6);
}

int main(void)
{
	int port;

	probe_init();
	lfd4 = tcp_listener("127.0.0.1", &port);
	ok4 = sin4("127.0.0.1", port);
	lfd6 = tcp_listener("::1", &port);
	ok6 = sin6("::1", port);

	descriptors();
	addresses();
	lengths();
	families();
	order();
	return 0;
}
