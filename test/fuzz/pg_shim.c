/*
 * pg_shim.c: the few PostgreSQL server functions the parsing code of
 * src/model.c calls, so that it runs in a standalone fuzzing binary.
 *
 * Memory contexts are real enough to find leaks and use-after-free: every
 * chunk belongs to a context, deleting a context frees its chunks, runs its
 * reset callbacks and deletes its children.  ereport(ERROR) longjmps to the
 * innermost PG_TRY like the server does; errors outside a PG_TRY abort.
 * Server functions not listed here are left unresolved on purpose: the
 * fuzzed paths must not reach SPI, the catalog or libxgboost.
 */
#include "postgres.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/stringinfo.h"
#include "utils/memutils.h"

/* c.h maps these to PostgreSQL's own printf; the shim uses libc's. */
#undef vsnprintf
#undef fprintf
#undef vfprintf

typedef struct ShimChunk
{
	struct ShimChunk *prev;
	struct ShimChunk *next;
	struct ShimContext *ctx;
	size_t		size;
	/* payload follows, maximally aligned */
} ShimChunk;

#define CHUNK_HDR MAXALIGN(sizeof(ShimChunk))

typedef struct ShimContext
{
	MemoryContextData base;		/* only its address is used by callers */
	struct ShimContext *parent;
	struct ShimContext *first_child;
	struct ShimContext *next_sibling;
	ShimChunk  *chunks;
	MemoryContextCallback *callbacks;
} ShimContext;

static ShimContext top_context;
MemoryContext TopMemoryContext = (MemoryContext) &top_context;
MemoryContext CurrentMemoryContext = (MemoryContext) &top_context;
MemoryContext CurTransactionContext = (MemoryContext) &top_context;
sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;

static int	shim_elevel;
static char shim_message[1024];

/* Allocates size bytes in ctx. */
static void *
ShimAlloc(ShimContext *ctx, size_t size, bool zero)
{
	ShimChunk  *c = malloc(CHUNK_HDR + size);

	if (c == NULL)
		abort();
	c->ctx = ctx;
	c->size = size;
	c->prev = NULL;
	c->next = ctx->chunks;
	if (ctx->chunks)
		ctx->chunks->prev = c;
	ctx->chunks = c;
	if (zero)
		memset((char *) c + CHUNK_HDR, 0, size);
	return (char *) c + CHUNK_HDR;
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return ShimAlloc((ShimContext *) context, size, false);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return ShimAlloc((ShimContext *) context, size, true);
}

void *
palloc(Size size)
{
	return ShimAlloc((ShimContext *) CurrentMemoryContext, size, false);
}

void *
palloc0(Size size)
{
	return ShimAlloc((ShimContext *) CurrentMemoryContext, size, true);
}

void
pfree(void *pointer)
{
	ShimChunk  *c = (ShimChunk *) ((char *) pointer - CHUNK_HDR);

	if (c->prev)
		c->prev->next = c->next;
	else
		c->ctx->chunks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

void *
repalloc(void *pointer, Size size)
{
	ShimChunk  *c = (ShimChunk *) ((char *) pointer - CHUNK_HDR);
	void	   *n = ShimAlloc(c->ctx, size, false);

	memcpy(n, pointer, Min(size, c->size));
	pfree(pointer);
	return n;
}

void *
repalloc_huge(void *pointer, Size size)
{
	return repalloc(pointer, size);
}

char *
MemoryContextStrdup(MemoryContext context, const char *string)
{
	size_t		n = strlen(string) + 1;
	char	   *p = MemoryContextAlloc(context, n);

	memcpy(p, string, n);
	return p;
}

char *
pstrdup(const char *in)
{
	return MemoryContextStrdup(CurrentMemoryContext, in);
}

char *
pnstrdup(const char *in, Size len)
{
	size_t		n = strnlen(in, len);
	char	   *p = palloc(n + 1);

	memcpy(p, in, n);
	p[n] = '\0';
	return p;
}

char *
psprintf(const char *fmt,...)
{
	va_list		ap;
	char		buf[4096];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return pstrdup(buf);
}

int
pg_snprintf(char *str, size_t count, const char *fmt,...)
{
	va_list		ap;
	int			r;

	va_start(ap, fmt);
	r = vsnprintf(str, count, fmt, ap);
	va_end(ap);
	return r;
}

MemoryContext
AllocSetContextCreateInternal(MemoryContext parent, const char *name,
							  Size minContextSize, Size initBlockSize, Size maxBlockSize)
{
	ShimContext *ctx = calloc(1, sizeof(ShimContext));
	ShimContext *p = (ShimContext *) parent;

	if (ctx == NULL)
		abort();
	ctx->parent = p;
	if (p)
	{
		ctx->next_sibling = p->first_child;
		p->first_child = ctx;
	}
	return (MemoryContext) ctx;
}

void
MemoryContextRegisterResetCallback(MemoryContext context, MemoryContextCallback *cb)
{
	ShimContext *ctx = (ShimContext *) context;

	cb->next = ctx->callbacks;
	ctx->callbacks = cb;
}

/* Frees everything in ctx and its children, running reset callbacks first. */
static void
ShimReset(ShimContext *ctx)
{
	while (ctx->first_child)
	{
		ShimContext *child = ctx->first_child;

		ctx->first_child = child->next_sibling;
		ShimReset(child);
		free(child);
	}
	while (ctx->callbacks)
	{
		MemoryContextCallback *cb = ctx->callbacks;

		ctx->callbacks = cb->next;
		cb->func(cb->arg);
	}
	while (ctx->chunks)
	{
		ShimChunk  *c = ctx->chunks;

		ctx->chunks = c->next;
		free(c);
	}
}

void
MemoryContextDelete(MemoryContext context)
{
	ShimContext *ctx = (ShimContext *) context;
	ShimContext *p = ctx->parent;

	if (p)
	{
		ShimContext **link = &p->first_child;

		while (*link && *link != ctx)
			link = &(*link)->next_sibling;
		if (*link)
			*link = ctx->next_sibling;
	}
	ShimReset(ctx);
	free(ctx);
}

/* Frees everything allocated in the top context (between fuzz inputs). */
void		ShimResetAll(void);
void
ShimResetAll(void)
{
	ShimReset(&top_context);
	CurrentMemoryContext = TopMemoryContext;
}

void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	str->len = 0;
	str->data[0] = '\0';
	str->cursor = 0;
}

void
appendBinaryStringInfo(StringInfo str, const char *data, int datalen)
{
	if (str->len + datalen + 1 > str->maxlen)
	{
		while (str->len + datalen + 1 > str->maxlen)
			str->maxlen *= 2;
		str->data = repalloc(str->data, str->maxlen);
	}
	memcpy(str->data + str->len, data, datalen);
	str->len += datalen;
	str->data[str->len] = '\0';
}

bool
errstart(int elevel, const char *domain)
{
	shim_elevel = elevel;
	return elevel >= ERROR;		/* lower levels are not reported */
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

/* Formats each message part, so that bad format strings and arguments show up. */
#define SHIM_FORMAT(fmt) \
	do { \
		va_list ap; \
		va_start(ap, fmt); \
		vsnprintf(shim_message, sizeof(shim_message), fmt, ap); \
		va_end(ap); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	SHIM_FORMAT(fmt);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	SHIM_FORMAT(fmt);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	SHIM_FORMAT(fmt);
	return 0;
}

int
errhint(const char *fmt,...)
{
	SHIM_FORMAT(fmt);
	return 0;
}

int
errcode(int sqlerrcode)
{
	return 0;
}

int
errcode_for_file_access(void)
{
	return 0;
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (shim_elevel < ERROR)
		return;
	if (PG_exception_stack == NULL)
	{
		fprintf(stderr, "ERROR outside PG_TRY at %s:%d: %s\n", filename, lineno, shim_message);
		abort();
	}
	siglongjmp(*PG_exception_stack, 1);
}

void
pg_re_throw(void)
{
	if (PG_exception_stack == NULL)
		abort();
	siglongjmp(*PG_exception_stack, 1);
}

int
pg_vsnprintf(char *str, size_t count, const char *fmt, va_list args)
{
	return vsnprintf(str, count, fmt, args);
}

int
pg_fprintf(FILE *stream, const char *fmt,...)
{
	va_list		ap;
	int			r;

	va_start(ap, fmt);
	r = vfprintf(stream, fmt, ap);
	va_end(ap);
	return r;
}
