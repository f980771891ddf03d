// uffd.h: a page that a userfaultfd of this process registers and serves
// only when told (hungmem.c, hungwaiter.c). The userfaultfd comes from fd 3
// when it is an open /dev/userfaultfd (USERFAULTFD_IOC_NEW), else from
// /dev/userfaultfd, else from userfaultfd(2): one that handles faults in
// kernel mode, which only a privileged opener gets. Failures exit: 3 when
// there is no userfaultfd, 2 otherwise.
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int uffd_open(void) {
	int dev = fcntl(3, F_GETFD) >= 0 ? 3 : open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	int u = dev >= 0 ? ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC) : -1;
	if (u < 0)
		u = syscall(SYS_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = {.api = UFFD_API};
	if (u < 0 || ioctl(u, UFFDIO_API, &api)) {
		printf("no userfaultfd: %s\n", strerror(errno));
		exit(3);
	}
	return u;
}

// uffd_register makes the page at page (page-aligned) wait when missing.
static void uffd_register(int u, void *page) {
	struct uffdio_register reg = {.range = {.start = (unsigned long)page, .len = sysconf(_SC_PAGESIZE)},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(u, UFFDIO_REGISTER, &reg)) {
		perror("UFFDIO_REGISTER");
		exit(2);
	}
}

// uffd_faulted waits up to 10 s for the first fault on the page and reads
// its event; it reports whether one came.
static int uffd_faulted(int u) {
	struct pollfd p = {.fd = u, .events = POLLIN};
	if (poll(&p, 1, 10000) != 1)
		return 0;
	struct uffd_msg msg;
	if (read(u, &msg, sizeof msg) != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT) {
		perror("uffd read");
		exit(2);
	}
	return 1;
}

// uffd_serve fills the page with a copy of src (a page), waking whoever
// waits on it.
static void uffd_serve(int u, void *page, const void *src) {
	struct uffdio_copy cp = {.dst = (unsigned long)page, .src = (unsigned long)src, .len = sysconf(_SC_PAGESIZE)};
	if (ioctl(u, UFFDIO_COPY, &cp)) {
		perror("UFFDIO_COPY");
		exit(2);
	}
}
