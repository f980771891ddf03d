// fdwrite: writes one byte to every descriptor from 3 to 64 and prints how
// many writes succeeded. An inherited connected socket is a way out that
// needs no connect.
#include <stdio.h>
#include <unistd.h>

int main(void) {
	int n = 0;
	for (int fd = 3; fd <= 64; fd++)
		if (write(fd, "x", 1) == 1)
			n++;
	printf("written=%d\n", n);
	return 0;
}
