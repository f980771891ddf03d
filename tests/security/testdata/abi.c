// abi: makes one syscall through a foreign ABI. Under the sandbox, both the
// x32 ABI and the i386 ABI (int $0x80) must kill the process (SIGSYS).
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
	long ret;
	if (argc > 1 && strcmp(argv[1], "x32") == 0) {
		long nr = 0x40000000L | 39; /* getpid, x32 numbering */
		__asm__ volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	} else {
		long nr = 20; /* getpid on i386 */
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
	}
	printf("survived ret=%ld\n", ret);
	return 0;
}
