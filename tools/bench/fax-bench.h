/* SPDX-License-Identifier: ISC */
/* fax-bench.h -- twinroute-bench fax: the card page's composition cost */
#ifndef TR_BENCH_FAX_BENCH_H
#define TR_BENCH_FAX_BENCH_H

/* argv[0] is "fax". Returns the exit status. */
int fax_bench_main(int argc, char **argv);

#endif
