/*
 * asan_first.c: start-up shim for `make asan` (contrib/asan.sh).
 *
 * Preloaded after libasan and linked with -z initfirst, so the dynamic linker
 * runs this constructor before any other library's: it initialises the ASan
 * runtime before a constructor's first malloc can do it from inside glibc's
 * bindtextdomain, where the runtime's own start-up (dlerror, hence gettext)
 * would corrupt glibc's locale lock and hang the process.
 */
extern void __asan_init(void);

__attribute__((constructor))
static void
asan_init_first(void)
{
	__asan_init();
}
