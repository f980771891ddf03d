// unixflip: one thread swaps a symlink between a Unix socket the policy
// allows and one it denies, while another connects through it in a loop.
// Under the sandbox no connect may reach the denied socket: the supervisor
// opens the path once, decides on the object it opened, and connects to
// that very object.
//
// usage: unixflip DIR ATTEMPTS link|dir
// DIR holds allowed/s.sock and denied/s.sock (listeners of the test).
//   link: DIR/l is a symlink to allowed/s.sock or denied/s.sock; connect DIR/l.
//   dir:  DIR/d is a symlink to allowed or denied; connect DIR/d/s.sock.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static atomic_int stop;
static char tmp[200], link_path[200];
static const char *targets[2];

static void *flip(void *arg) {
	(void)arg;
	for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
		unlink(tmp);
		if (symlink(targets[i & 1], tmp) == 0)
			rename(tmp, link_path); // atomic: the path always exists
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 4)
		return 2;
	const char *dir = argv[1];
	long n = atol(argv[2]);
	int dirmode = strcmp(argv[3], "dir") == 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(tmp, sizeof tmp, "%s/tmp", dir);
	if (dirmode) {
		targets[0] = "allowed";
		targets[1] = "denied";
		snprintf(link_path, sizeof link_path, "%s/d", dir);
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s/d/s.sock", dir);
	} else {
		targets[0] = "allowed/s.sock";
		targets[1] = "denied/s.sock";
		snprintf(link_path, sizeof link_path, "%s/l", dir);
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s/l", dir);
	}
	symlink(targets[0], link_path);
	pthread_t t;
	pthread_create(&t, NULL, flip, NULL);
	long ok = 0, denied = 0, other = 0;
	for (long i = 0; i < n; i++) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		int r = connect(s, (void *)&sa, sizeof sa);
		if (r == 0)
			ok++;
		else if (errno == EACCES)
			denied++;
		else
			other++; // ENOENT while a rename is under way is Linux's own
		close(s);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("connected=%ld denied=%ld other=%ld\n", ok, denied, other);
	return 0;
}
