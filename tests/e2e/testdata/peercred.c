// peercred: everything a Unix stream connect lets either end observe, for a
// root client and for an unprivileged one. Under the sandbox, the only
// expected difference is the peer pid seen by the server (the supervisor
// performs the connect): lines "*.peer_pid_is_client" and "*.peer_pid_is_parent".
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void name(const char *tag, const char *what, struct sockaddr_un *a, socklen_t l) {
	if (l <= sizeof(sa_family_t))
		printf("%s.%s=unnamed\n", tag, what);
	else if (a->sun_path[0] == 0)
		printf("%s.%s=@%.*s\n", tag, what, (int)(l - sizeof(sa_family_t) - 1), a->sun_path + 1);
	else
		printf("%s.%s=%s\n", tag, what, strrchr(a->sun_path, '/') ? strrchr(a->sun_path, '/') + 1 : a->sun_path);
}

static void one(const char *tag, struct sockaddr_un *addr, socklen_t alen, int unprivileged) {
	int srv = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(srv, (void *)addr, alen) || listen(srv, 4)) {
		perror("bind/listen");
		exit(2);
	}
	if (addr->sun_path[0])
		chmod(addr->sun_path, 0777);
	int pfd[2];
	pipe(pfd);
	pid_t child = fork();
	if (child == 0) {
		if (unprivileged && (setgid(65534) || setuid(65534)))
			_exit(3);
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		int r = connect(c, (void *)addr, alen);
		int e = errno;
		struct sockaddr_un a;
		socklen_t l = sizeof a;
		getpeername(c, (void *)&a, &l);
		// One write (atomic on a pipe): the pid, then the text.
		char buf[512];
		pid_t me = getpid();
		memcpy(buf, &me, sizeof me);
		int n = snprintf(buf + sizeof me, sizeof buf - sizeof me, "%s.connect=%d errno=%d\n", tag, r, r ? e : 0);
		write(pfd[1], buf, sizeof me + n);
		read(c, buf, 1); // wait for the server to look
		_exit(0);
	}
	close(pfd[1]);
	int s = accept(srv, NULL, NULL);
	char buf[512];
	int n = read(pfd[0], buf, sizeof buf);
	pid_t cpid = 0;
	if (n > (int)sizeof cpid) {
		memcpy(&cpid, buf, sizeof cpid);
		fwrite(buf + sizeof cpid, 1, n - sizeof cpid, stdout);
	}
	close(pfd[0]);
	struct ucred cr;
	socklen_t cl = sizeof cr;
	getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl);
	printf("%s.peer_uid=%d\n%s.peer_gid=%d\n", tag, cr.uid, tag, cr.gid);
	printf("%s.peer_pid_is_client=%d\n", tag, cr.pid == cpid);
	printf("%s.peer_pid_is_parent=%d\n", tag, cr.pid == getppid());
	struct sockaddr_un a;
	socklen_t l = sizeof a;
	getpeername(s, (void *)&a, &l);
	name(tag, "server_sees_peer", &a, l);
	l = sizeof a;
	getsockname(s, (void *)&a, &l);
	name(tag, "server_accepted_name", &a, l);
	write(s, "x", 1);
	int st;
	waitpid(child, &st, 0);
	close(s);
	close(srv);
}

int main(void) {
	char dir[] = "/tmp/peercredXXXXXX";
	if (!mkdtemp(dir))
		return 2;
	chmod(dir, 0755);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s/s1", dir);
	one("path.root", &a, sizeof a, 0);
	snprintf(a.sun_path, sizeof a.sun_path, "%s/s2", dir);
	one("path.nobody", &a, sizeof a, 1);
	struct sockaddr_un ab = {.sun_family = AF_UNIX};
	snprintf(ab.sun_path + 1, sizeof ab.sun_path - 1, "sandbox-peercred-probe");
	socklen_t abl = sizeof(sa_family_t) + 1 + strlen(ab.sun_path + 1);
	one("abstract.root", &ab, abl, 0);
	ab.sun_path[1] = 'q';
	one("abstract.nobody", &ab, abl, 1);
	unlink(a.sun_path);
	snprintf(a.sun_path, sizeof a.sun_path, "%s/s1", dir);
	unlink(a.sun_path);
	rmdir(dir);
	return 0;
}
