/*
 * asan_probe.c: self-check of `make asan` (contrib/asan.sh).
 *
 * Built twice: as an instrumented shared library (the default) holding a heap
 * overflow, and with -DPROBE_MAIN as an uninstrumented program that dlopens
 * it, as the server dlopens cscopilot.so.  Run with the same preloads as the
 * server, it must end in an AddressSanitizer heap-buffer-overflow report;
 * otherwise the heap checks are not live and the run fails.
 */
#include <stdio.h>
#include <stdlib.h>

#ifdef PROBE_MAIN
#include <dlfcn.h>

int
main(int argc, char **argv)
{
	void	   *lib;
	int			(*overflow) (int);

	if (argc != 2 || (lib = dlopen(argv[1], RTLD_NOW)) == NULL)
	{
		fprintf(stderr, "asan_probe: cannot load %s: %s\n", argc == 2 ? argv[1] : "(none)", dlerror());
		return 2;
	}
	overflow = (int (*) (int)) dlsym(lib, "asan_probe_overflow");
	if (overflow == NULL)
		return 2;
	printf("read %d past the end, unreported\n", overflow(8));
	return 0;
}
#else
int			asan_probe_overflow(int i);

/* Reads p[i] of an 8-byte heap block: out of bounds for i >= 8. */
int
asan_probe_overflow(int i)
{
	char	   *p = malloc(8);
	volatile char c;

	if (p == NULL)
		return -1;
	c = p[i];
	free(p);
	return c;
}
#endif
