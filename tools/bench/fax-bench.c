/* SPDX-License-Identifier: ISC */
/* fax-bench.c -- twinroute-bench fax: the card page's composition cost */

/*
 * Composes the card page the way the vault does (fax_card_lines, FreeType
 * render, T.4 1-D and 2-D encoding into locked memory) N times with a test
 * card, and reports the time per page (render, each encoding, the whole
 * composition) and the encoded bytes; the line time of one page at
 * 14,400 bit/s follows from the bytes. No daemon is involved: on the
 * daemon this work runs in the vault thread, once per fax try.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench-card.h"
#include "bench/fax-bench.h"
#include "common/clock.h"
#include "fax/page.h"
#include "vault/faxdoc.h"
#include "vault/secmem.h"

#define FAX_BENCH_DEFAULT 50
#define FAX_BENCH_MAX 100000

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct series {
	const char *name;
	uint64_t *us;
};

static uint64_t
pct(const uint64_t *sorted, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return sorted[i < n ? i : n - 1];
}

static void
fax_bench_usage(FILE *f)
{
	fprintf(f,
	    "usage: twinroute-bench fax [--count N] [--font PATH] [--json]\n"
	    "Compose the card fax page N times (default %d) as the vault does:\n"
	    "render with FreeType, encode T.4 1-D (MH) and 2-D (MR). Prints the\n"
	    "time per page and the encoded size; the line time at 14400 bit/s\n"
	    "is the size's bits over the rate (plus call set-up and training).\n",
	    FAX_BENCH_DEFAULT);
}

int
fax_bench_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "font", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fax_page_opts po = { 0 };
	char number[CARD_NUMBER_MAX + 1];
	struct fax_card_fields fields = {
		.broker_name = "twinroute",
		.broker_ident = "+81 3 5555 0100",
		.time_unix = 1795000000,
		.provider_id = "fuji-travel",
		.provider_name = "Fuji Travel Desk",
		.order_id = 123456,
		.fax_ref = "FX-ABCD-EFGH",
		.service_name = "Mount Fuji day tour",
		.quantity = 2,
		.amount = "29000 JPY",
		.holder = "BENCH TESTER",
		.number = number,
		.exp_month = 12,
		.exp_year = 2030,
	};
	char (*lines)[FAX_CARD_LINE_LEN] = NULL;
	uint8_t *bitmap = NULL, *out = NULL;
	uint64_t *t_render = NULL, *t_1d = NULL, *t_2d = NULL, *t_all = NULL;
	size_t n = FAX_BENCH_DEFAULT, len_1d = 0, len_2d = 0, out_max;
	bool json = false;
	int opt, n_lines, r = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v < 1 || v > FAX_BENCH_MAX) {
				fprintf(stderr, "twinroute-bench: --count: 1..%d: "
				    "%s\n", FAX_BENCH_MAX, optarg);
				return 2;
			}
			n = v;
			break;
		}
		case 'f':
			po.font_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fax_bench_usage(stdout);
			return 0;
		default:
			fax_bench_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fax_bench_usage(stderr);
		return 2;
	}

	(void)secmem_init();
	out_max = fax_page_encoded_max();
	lines = secmem_zalloc(FAX_CARD_LINES_MAX * sizeof(*lines));
	bitmap = secmem_pages_alloc(FAX_PAGE_BYTES);
	out = secmem_pages_alloc(out_max);
	t_render = calloc(n, sizeof(*t_render));
	t_1d = calloc(n, sizeof(*t_1d));
	t_2d = calloc(n, sizeof(*t_2d));
	t_all = calloc(n, sizeof(*t_all));
	if (!lines || !bitmap || !out || !t_render || !t_1d || !t_2d ||
	    !t_all) {
		fprintf(stderr, "twinroute-bench: out of memory\n");
		goto done;
	}
	bench_card_number(0, number);
	n_lines = fax_card_lines(&fields, lines, FAX_CARD_LINES_MAX);
	if (n_lines < 0) {
		fprintf(stderr, "twinroute-bench: page text: %s\n",
		    strerror(-n_lines));
		goto done;
	}

	for (size_t i = 0; i < n; i++) {
		const char *ptrs[FAX_CARD_LINES_MAX];
		struct fax_doc *doc = NULL;
		uint64_t t0, t1, t2, t3;
		int e;

		for (int k = 0; k < n_lines; k++)
			ptrs[k] = lines[k];
		t0 = clock_monotonic_us();
		e = fax_page_render(&po, ptrs, (size_t)n_lines, bitmap,
		    FAX_PAGE_BYTES);
		t1 = clock_monotonic_us();
		if (e == 0)
			e = fax_page_encode(bitmap, FAX_T4_1D, out, out_max,
			    &len_1d);
		t2 = clock_monotonic_us();
		if (e == 0)
			e = fax_page_encode(bitmap, FAX_T4_2D, out, out_max,
			    &len_2d);
		t3 = clock_monotonic_us();
		if (e < 0) {
			fprintf(stderr, "twinroute-bench: page: %s\n",
			    strerror(-e));
			goto done;
		}
		t_render[i] = t1 - t0;
		t_1d[i] = t2 - t1;
		t_2d[i] = t3 - t2;
		t0 = clock_monotonic_us();
		e = fax_doc_compose(&po, &fields, &doc);
		t_all[i] = clock_monotonic_us() - t0;
		if (e < 0) {
			fprintf(stderr, "twinroute-bench: compose: %s\n",
			    strerror(-e));
			goto done;
		}
		fax_doc_free(doc);
	}

	{
		struct series s[] = {
			{ "render", t_render }, { "encode_1d", t_1d },
			{ "encode_2d", t_2d }, { "compose", t_all },
		};
		double line_1d = (double)len_1d * 8 / 14400;
		double line_2d = (double)len_2d * 8 / 14400;

		for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
			qsort(s[k].us, n, sizeof(uint64_t), cmp_u64);
		if (json) {
			printf("{\"mode\":\"fax\",\"pages\":%zu", n);
			for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
				printf(",\"%s_p50_us\":%" PRIu64 ",\"%s_p99_us\":%"
				    PRIu64, s[k].name, pct(s[k].us, n, 0.5),
				    s[k].name, pct(s[k].us, n, 0.99));
			printf(",\"bytes_1d\":%zu,\"bytes_2d\":%zu,"
			    "\"line_s_1d\":%.2f,\"line_s_2d\":%.2f}\n", len_1d,
			    len_2d, line_1d, line_2d);
		} else {
			printf("fax page: %zu compositions (1728x2287, %d lines)\n",
			    n, n_lines);
			for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
				printf("  %-10s p50 %8.2f ms  p99 %8.2f ms\n",
				    s[k].name,
				    (double)pct(s[k].us, n, 0.5) / 1000,
				    (double)pct(s[k].us, n, 0.99) / 1000);
			printf("  encoded: %zu bytes 1-D (MH), %zu bytes 2-D (MR)\n"
			    "  line time at 14400 bit/s: %.1f s 1-D, %.1f s 2-D "
			    "(page data only)\n", len_1d, len_2d, line_1d,
			    line_2d);
		}
	}
	r = 0;
done:
	if (lines)
		secmem_free(lines);
	secmem_pages_free(bitmap);
	secmem_pages_free(out);
	free(t_render);
	free(t_1d);
	free(t_2d);
	free(t_all);
	return r;
}
