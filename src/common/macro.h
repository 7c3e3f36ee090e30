/* SPDX-License-Identifier: ISC */
/* macro.h -- small helpers shared by every module: cleanup, sizes, attributes */
#ifndef TR_MACRO_H
#define TR_MACRO_H

#include <stdlib.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_result_ __attribute__((warn_unused_result))

static inline void
freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)

/* Run FUNC(*p) when a variable of TYPE goes out of scope, if non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                \
	static inline void func##p(type *p)                                    \
	{                                                                      \
		if (*p)                                                        \
			func(*p);                                              \
	}

/* Hand ownership out of a cleanup-scoped variable. */
#define TAKE_PTR(ptr)                                                          \
	({                                                                     \
		__typeof__(ptr) _p_ = (ptr);                                   \
		(ptr) = NULL;                                                  \
		_p_;                                                           \
	})

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * protobuf-c message fields are plain pointers; replies point them at data
 * the loop only reads (catalog entries, literals). No cast, so -Wcast-qual
 * stays on for everything else.
 */
static inline void *
unconst(const void *p)
{
	union {
		const void *c;
		void *m;
	} u = { .c = p };
	return u.m;
}

#endif
