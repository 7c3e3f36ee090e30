/* SPDX-License-Identifier: ISC */
/* test_vault.c -- unit tests for the sealed card vault, through its thread and
 * queues */

/*
 * Every test runs a real vault thread on a real event_base in a mkdtemp
 * directory. The vault's clock is the fake one below (vault_opts.now), so
 * expiry and the 24-hour limit can be tested without waiting. Card
 * numbers are the schemes' public test numbers.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <lmdb.h>

#include "common/errcode.h"
#include "vault.pb-c.h"
#include "vault/card.h"
#include "vault/envelope.h"
#include "vault/secmem.h"
#include "vault/vault.h"
#include "vault/vault_int.h"

#include "tmpdir.h"

#define VISA "4111111111111111"
#define MASTERCARD "5555555555554444"
#define AMEX "378282246310005"
#define DISCOVER "6011111111111117"

/* 2026-06-15T12:00:00Z */
#define T0 ((time_t)1781524800)

static time_t fake_now = T0;

static time_t
test_now(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static void
set_now(time_t t)
{
	__atomic_store_n(&fake_now, t, __ATOMIC_SEQ_CST);
}

struct fixture {
	char dir[64];
	char path[128]; /* vault env */
	char audit[128];
	char key_file[128];
	struct event_base *base;
	struct vault *v;
	int64_t order_limit, daily_limit;
	bool use_key_file;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "vault") < 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/vault", f->dir);
	snprintf(f->audit, sizeof(f->audit), "%s/audit.log", f->dir);
	snprintf(f->key_file, sizeof(f->key_file), "%s/vault.key", f->dir);
	f->base = event_base_new();
	f->order_limit = 100000;
	f->daily_limit = 500000;
	set_now(T0);
	*state = f;
	return f->base ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int r;

	f->v = vault_close(f->v);
	event_base_free(f->base);
	r = tmpdir_remove(f->dir);
	free(f);
	return r;
}

static int
try_open(
    struct fixture *f, const char *path, const char *audit, struct vault **ret)
{
	struct vault_opts o = {
	    .path = path,
	    .map_size = 16u << 20,
	    .key_file = f->use_key_file ? f->key_file : NULL,
	    .audit_log = audit,
	    .order_limit = f->order_limit,
	    .daily_limit = f->daily_limit,
	    .now = test_now,
	};

	return vault_open(&o, f->base, ret);
}

static void
open_vault(struct fixture *f)
{
	assert_null(f->v);
	assert_int_equal(try_open(f, f->path, f->audit, &f->v), 0);
	assert_non_null(f->v);
}

static void
close_vault(struct fixture *f)
{
	f->v = vault_close(f->v);
}

/* ---- calling the vault --------------------------------------------------- */

struct result {
	bool done;
	struct vault_reply reply;
};

static void
on_reply(void *arg, struct vault_reply *y)
{
	struct result *r = arg;

	assert_false(r->done);
	r->reply = *y;
	r->done = true;
}

static struct vault_reply
call(struct fixture *f, struct vault *v, const struct vault_request *q)
{
	struct result r = {0};

	assert_int_equal(vault_submit(v, q, on_reply, &r), 0);
	while (!r.done)
		assert_int_not_equal(event_base_loop(f->base, EVLOOP_ONCE), -1);
	assert_int_equal(r.reply.op, q->op);
	return r.reply;
}

static struct vault_request
req(enum vault_op op, const char *member)
{
	struct vault_request q;

	memset(&q, 0, sizeof(q));
	q.op = op;
	snprintf(q.actor, sizeof(q.actor), "test uid=0");
	if (member)
		snprintf(q.member, sizeof(q.member), "%s", member);
	return q;
}

static struct vault_reply
do_op(struct fixture *f, enum vault_op op, const char *member)
{
	struct vault_request q = req(op, member);

	return call(f, f->v, &q);
}

static void
check_code(struct vault_reply y, enum vault_code want, int line)
{
	if (y.code != want)
		fail_msg("line %d: %s: %s (%s), want %s", line,
		    vault_strop(y.op), vault_strcode(y.code), y.message,
		    vault_strcode(want));
}

#define assert_code(reply, want) check_code((reply), (want), __LINE__)

static struct vault_reply
init_shares(struct fixture *f, struct vault *v, unsigned n, unsigned k)
{
	struct vault_request q = req(VAULT_OP_INIT, NULL);
	struct vault_reply y;

	q.init.shares = n;
	q.init.threshold = k;
	y = call(f, v, &q);
	assert_code(y, VAULT_OK);
	assert_int_equal(y.n_shares, n);
	return y;
}

static struct vault_reply
unseal(struct fixture *f, struct vault *v, const char *share)
{
	struct vault_request q = req(VAULT_OP_UNSEAL, NULL);

	snprintf(q.unseal.share, sizeof(q.unseal.share), "%s", share);
	return call(f, v, &q);
}

static void
unseal_all(struct fixture *f, const struct vault_reply *init, unsigned a,
    unsigned b, unsigned c)
{
	struct vault_reply y;

	y = unseal(f, f->v, init->share_text[a]);
	assert_code(y, VAULT_OK);
	assert_true(y.sealed);
	y = unseal(f, f->v, init->share_text[b]);
	assert_code(y, VAULT_OK);
	assert_true(y.sealed);
	y = unseal(f, f->v, init->share_text[c]);
	assert_code(y, VAULT_OK);
	assert_false(y.sealed);
}

/* A key-file vault, initialized and unsealed. */
static struct vault_reply
init_key_file(struct fixture *f)
{
	struct vault_request q = req(VAULT_OP_INIT, NULL);
	struct vault_reply y;

	f->use_key_file = true;
	open_vault(f);
	q.init.key_file = true;
	y = call(f, f->v, &q);
	assert_code(y, VAULT_OK);
	assert_false(y.sealed);
	assert_true(y.key_file);
	return y;
}

static struct card_input
card(const char *number, unsigned month, unsigned year)
{
	struct card_input in;

	memset(&in, 0, sizeof(in));
	snprintf(in.number, sizeof(in.number), "%s", number);
	in.exp_month = month;
	in.exp_year = year;
	snprintf(in.holder, sizeof(in.holder), "Zed Testholder");
	return in;
}

static struct vault_reply
card_set_in(struct fixture *f, const char *member, const char *seal_member,
    const struct card_input *in)
{
	struct vault_request q = req(VAULT_OP_CARD_SET, member);
	struct vault_reply st = do_op(f, VAULT_OP_STATUS, NULL);

	assert_true(st.initialized);
	assert_int_equal(
	    envelope_seal(st.enrol_key, seal_member, in, q.card_set.envelope,
		sizeof(q.card_set.envelope), &q.card_set.len),
	    0);
	return call(f, f->v, &q);
}

static struct vault_reply
card_set(struct fixture *f, const char *member, const char *number,
    unsigned month, unsigned year)
{
	struct card_input in = card(number, month, year);

	return card_set_in(f, member, member, &in);
}

static struct vault_reply
auth(
    struct fixture *f, const char *member, int64_t amount, const char *currency)
{
	struct vault_request q = req(VAULT_OP_AUTHENTICATE, member);

	q.auth.amount = amount;
	snprintf(q.auth.currency, sizeof(q.auth.currency), "%s", currency);
	q.auth.order_id = 42;
	return call(f, f->v, &q);
}

/* ---- file helpers -------------------------------------------------------- */

static char *
read_file(const char *path, size_t *ret_len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*ret_len = (size_t)n;
	return buf;
}

static bool
mem_contains(const char *buf, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(buf + i, needle, n) == 0)
			return true;
	}
	return false;
}

static size_t
count_lines(const char *buf, const char *needle)
{
	size_t n = 0;

	for (const char *p = buf; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The vault's audit fd, found through /proc/self/fd. */
static int
find_fd(const char *path)
{
	char link[PATH_MAX], target[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int found = -1;

	assert_non_null(d);
	while ((de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0)
			found = atoi(de->d_name);
	}
	closedir(d);
	return found;
}

/* Raw LMDB on the vault's directory, while the vault is closed. */
struct raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
};

static void
raw_open(struct fixture *f, struct raw *r, const char *db, bool write)
{
	assert_int_equal(mdb_env_create(&r->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(r->env, 8), 0);
	assert_int_equal(mdb_env_set_mapsize(r->env, 16u << 20), 0);
	assert_int_equal(mdb_env_open(r->env, f->path, 0, 0600), 0);
	assert_int_equal(
	    mdb_txn_begin(r->env, NULL, write ? 0 : MDB_RDONLY, &r->txn), 0);
	assert_int_equal(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0);
}

static void
raw_close(struct raw *r, bool commit)
{
	if (commit)
		assert_int_equal(mdb_txn_commit(r->txn), 0);
	else
		mdb_txn_abort(r->txn);
	mdb_env_close(r->env);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_names(void **state)
{
	static const char *const codes[VAULT_CODE__COUNT] = {
	    "OK",
	    "VAULT_SEALED",
	    "NO_CARD",
	    "EXPIRED",
	    "DISABLED",
	    "LIMIT",
	    "TAMPERED",
	    "NOT_INITIALIZED",
	    "ALREADY_INITIALIZED",
	    "BAD_SHARE",
	    "WRONG_VAULT",
	    "BAD_KEY",
	    "BAD_CARD",
	    "BAD_REQUEST",
	    "AUDIT_FAILED",
	    "ERROR",
	};

	(void)state;
	for (int c = 0; c < VAULT_CODE__COUNT; c++)
		assert_string_equal(
		    vault_strcode((enum vault_code)c), codes[c]);
	for (int op = 0; op < VAULT_OP__COUNT; op++)
		assert_string_not_equal(
		    vault_strop((enum vault_op)op), "unknown");
	assert_string_equal(vault_strop(VAULT_OP_AUTHENTICATE), "authenticate");
}

static void
test_secmem(void **state)
{
	struct fixture *f = *state;
	ProtobufCAllocator *a = &secmem_protobuf_allocator;
	struct vault_reply y;
	uint8_t *p, *q;

	open_vault(f);
	/* vault_open set up locked memory; the status says which. */
	assert_int_equal(secmem_init(), 0);
	y = do_op(f, VAULT_OP_STATUS, NULL);
	assert_non_null(strstr(y.message, "memory: "));
	assert_non_null(strstr(y.message, secmem_describe()));
	if (secmem_locked())
		assert_null(strstr(y.message, "NOT locked"));

	p = secmem_zalloc(100);
	q = a->alloc(a->allocator_data, 3000);
	assert_non_null(p);
	assert_non_null(q);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(p[i], 0);
	memset(p, 0xa5, 100);
	memset(q, 0x5a, 3000);
	assert_true(q + 3000 <= p || p + 100 <= q);
	secmem_free(p);
	a->free(a->allocator_data, q);
	secmem_free(NULL);
	assert_null(secmem_zalloc(SIZE_MAX - 8));
}

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct vault_opts o = {.path = f->path, .audit_log = f->audit};
	struct vault *v = NULL;
	char file[160];

	assert_int_equal(vault_open(NULL, f->base, &v), -EINVAL);
	assert_int_equal(vault_open(&o, NULL, &v), -EINVAL);
	o.audit_log = NULL;
	assert_int_equal(vault_open(&o, f->base, &v), -EINVAL);
	o.audit_log = f->audit;
	o.path = "";
	assert_int_equal(vault_open(&o, f->base, &v), -EINVAL);
	/* The audit log cannot be opened: the vault does not start. */
	snprintf(file, sizeof(file), "%s/missing/audit.log", f->dir);
	assert_int_equal(try_open(f, f->path, file, &v), -ENOENT);
	assert_null(v);
	/* A loose directory is tightened to 0700. */
	assert_int_equal(chmod(f->path, 0755), 0);
	open_vault(f);
	{
		struct stat st;

		assert_int_equal(stat(f->path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0700);
	}
}

static void
test_init_and_unseal(void **state)
{
	static const unsigned combos[][3] = {
	    {0, 1, 2},
	    {2, 3, 4},
	    {0, 2, 4},
	    {4, 1, 3},
	    {3, 0, 1},
	};
	struct fixture *f = *state;
	struct vault_reply init, y;
	char typed[VAULT_SHARE_TEXT_MAX];

	open_vault(f);
	y = do_op(f, VAULT_OP_STATUS, NULL);
	assert_code(y, VAULT_OK);
	assert_false(y.initialized);
	assert_true(y.sealed);
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1");
	assert_code(y, VAULT_NOT_INITIALIZED);
	y = unseal(f, f->v, "tr1-aaaa");
	assert_code(y, VAULT_NOT_INITIALIZED);

	/* Bad splits. */
	{
		struct vault_request q = req(VAULT_OP_INIT, NULL);

		q.init.shares = 5;
		q.init.threshold = 1;
		assert_code(call(f, f->v, &q), VAULT_BAD_REQUEST);
		q.init.threshold = 6;
		assert_code(call(f, f->v, &q), VAULT_BAD_REQUEST);
		q.init.shares = VAULT_SHARES_MAX + 1;
		q.init.threshold = 3;
		assert_code(call(f, f->v, &q), VAULT_BAD_REQUEST);
		q.init.shares = 0;
		q.init.key_file = true; /* none configured */
		assert_code(call(f, f->v, &q), VAULT_BAD_REQUEST);
	}

	init = init_shares(f, f->v, 5, 3);
	assert_true(init.initialized);
	assert_true(init.sealed); /* dual control: custodians unseal */
	assert_false(init.key_file);
	assert_int_equal(init.shares, 5);
	assert_int_equal(init.threshold, 3);
	assert_int_equal(init.progress, 0);
	assert_int_equal(init.key_version, 1);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(strncmp(init.share_text[i], "tr1-", 4), 0);
		assert_int_equal(strlen(init.share_text[i]), 93);
		for (unsigned k = 0; k < i; k++)
			assert_string_not_equal(
			    init.share_text[i], init.share_text[k]);
	}
	y = do_op(f, VAULT_OP_INIT, NULL);
	assert_code(y, VAULT_ALREADY_INITIALIZED);
	assert_int_equal(y.n_shares, 0);

	for (size_t c = 0; c < sizeof(combos) / sizeof(combos[0]); c++) {
		unseal_all(f, &init, combos[c][0], combos[c][1], combos[c][2]);
		y = unseal(f, f->v, init.share_text[0]);
		assert_code(y, VAULT_OK); /* already unsealed */
		assert_false(y.sealed);
		y = do_op(f, VAULT_OP_SEAL, NULL);
		assert_code(y, VAULT_OK);
		assert_true(y.sealed);
		assert_int_equal(y.progress, 0);
	}

	/* Two shares do not unseal; the same share twice counts once. */
	y = unseal(f, f->v, init.share_text[1]);
	assert_int_equal(y.progress, 1);
	y = unseal(f, f->v, init.share_text[1]);
	assert_code(y, VAULT_OK);
	assert_int_equal(y.progress, 1);
	assert_non_null(strstr(y.message, "already"));
	y = unseal(f, f->v, init.share_text[3]);
	assert_int_equal(y.progress, 2);
	assert_true(y.sealed);
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1");
	assert_code(y, VAULT_SEALED);
	/* Sealing also forgets the shares given so far. */
	y = do_op(f, VAULT_OP_SEAL, NULL);
	assert_int_equal(y.progress, 0);

	/* As typed: upper case, no dashes, spaces, a newline. */
	for (unsigned i = 0, n = 0; i < 3; i++, n = 0) {
		for (const char *p = init.share_text[i]; *p; p++) {
			if (*p == '-')
				continue;
			typed[n++] =
			    (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A'
							  : *p);
			if (n % 7 == 0)
				typed[n++] = ' ';
		}
		typed[n++] = '\n';
		typed[n] = '\0';
		y = unseal(f, f->v, typed);
		assert_code(y, VAULT_OK);
	}
	assert_false(y.sealed);
}

static void
test_bad_shares(void **state)
{
	struct fixture *f = *state;
	struct vault_reply init, other, y;
	struct vault *v2 = NULL;
	char path2[160], audit2[160], s[VAULT_SHARE_TEXT_MAX];
	struct vault_share sh;
	const char *why;

	open_vault(f);
	init = init_shares(f, f->v, 5, 3);
	y = unseal(f, f->v, init.share_text[0]);
	assert_int_equal(y.progress, 1);

	/* A flipped character: the checksum catches it. */
	for (size_t pos = 4; pos < 93; pos += 11) {
		snprintf(s, sizeof(s), "%s", init.share_text[1]);
		if (s[pos] == '-')
			pos++;
		s[pos] = s[pos] == 'a' ? 'b' : 'a';
		y = unseal(f, f->v, s);
		assert_code(y, VAULT_BAD_SHARE);
		assert_string_equal(y.message,
		    "share is corrupted (checksum mismatch): mistyped?");
		assert_int_equal(y.progress, 1);
	}
	/* Not a share at all. */
	y = unseal(f, f->v, "hello");
	assert_code(y, VAULT_BAD_SHARE);
	y = unseal(f, f->v, "");
	assert_code(y, VAULT_BAD_SHARE);
	snprintf(s, sizeof(s), "%s", init.share_text[1]);
	s[50] = '\0';
	y = unseal(f, f->v, s);
	assert_code(y, VAULT_BAD_SHARE);
	snprintf(s, sizeof(s), "%s", init.share_text[1]);
	s[10] = '0'; /* not in base32 */
	y = unseal(f, f->v, s);
	assert_code(y, VAULT_BAD_SHARE);
	assert_null(strstr(y.message, init.share_text[1] + 4));
	assert_int_equal(y.progress, 1);

	/* A good share of another vault. */
	snprintf(path2, sizeof(path2), "%s/vault2", f->dir);
	snprintf(audit2, sizeof(audit2), "%s/audit2.log", f->dir);
	assert_int_equal(try_open(f, path2, audit2, &v2), 0);
	other = init_shares(f, v2, 3, 2);
	y = unseal(f, f->v, other.share_text[0]);
	assert_code(y, VAULT_WRONG_VAULT);
	assert_int_equal(y.progress, 1);
	v2 = vault_close(v2);

	/*
	 * A share with a right checksum and vault id but the wrong bytes:
	 * the shares combine to the wrong key, the key check value says so,
	 * and progress starts over.
	 */
	assert_int_equal(vault_share_decode(init.share_text[2], &sh, &why), 0);
	sh.bytes[7] ^= 0x40;
	assert_int_equal(vault_share_encode(&sh, s), 0);
	y = unseal(f, f->v, init.share_text[1]);
	assert_int_equal(y.progress, 2);
	y = unseal(f, f->v, s);
	assert_code(y, VAULT_BAD_KEY);
	assert_true(y.sealed);
	assert_int_equal(y.progress, 0);
	unseal_all(f, &init, 4, 2, 1);
}

static void
test_share_text(void **state)
{
	struct vault_share sh, back;
	char text[VAULT_SHARE_TEXT_MAX];
	const char *why = NULL;

	(void)state;
	memset(&sh, 0, sizeof(sh));
	for (unsigned i = 0; i < VAULT_ID_SIZE; i++)
		sh.vault_id[i] = (uint8_t)(0xa0 + i);
	sh.nr = 7;
	for (unsigned i = 0; i < VAULT_KEY_SIZE; i++)
		sh.bytes[i] = (uint8_t)(i * 37);
	assert_int_equal(vault_share_encode(&sh, text), 0);
	assert_int_equal(strlen(text), 93);
	assert_int_equal(vault_share_decode(text, &back, &why), 0);
	assert_memory_equal(&sh, &back, sizeof(sh));
	/* Every single-character substitution is caught. */
	for (size_t i = 4; i < strlen(text); i++) {
		char orig = text[i];

		if (orig == '-')
			continue;
		for (const char *c = "abcdefghijklmnopqrstuvwxyz234567"; *c;
		     c++) {
			if (*c == orig)
				continue;
			text[i] = *c;
			assert_int_equal(
			    vault_share_decode(text, &back, &why), -EBADMSG);
		}
		text[i] = orig;
	}
	/* Swapping two neighbours too. */
	for (size_t i = 4; i + 1 < strlen(text); i++) {
		char a = text[i], b = text[i + 1];

		if (a == '-' || b == '-' || a == b)
			continue;
		text[i] = b;
		text[i + 1] = a;
		assert_int_not_equal(vault_share_decode(text, &back, &why), 0);
		text[i] = a;
		text[i + 1] = b;
	}
	assert_int_equal(vault_share_decode("tr2-aaaa", &back, &why), -EINVAL);
	assert_int_equal(vault_share_decode(NULL, &back, &why), -EINVAL);
}

static void
test_cards(void **state)
{
	struct fixture *f = *state;
	struct vault_reply y;
	struct card_input in;

	init_key_file(f);
	y = card_set(f, "M1001", VISA, 12, 2035);
	assert_code(y, VAULT_OK);
	assert_string_equal(y.brand, "visa");
	assert_string_equal(y.last4, "1111");
	assert_int_equal(y.exp_month, 12);
	assert_int_equal(y.exp_year, 2035);
	assert_int_equal(y.cards, 1);
	assert_null(strstr(y.message, VISA));

	y = do_op(f, VAULT_OP_CARD_SHOW, "M1001");
	assert_code(y, VAULT_OK);
	assert_string_equal(y.brand, "visa");
	assert_string_equal(y.last4, "1111");
	assert_int_equal(y.exp_year, 2035);

	/* Replacing keeps one card per member. */
	y = card_set(f, "M1001", AMEX, 3, 2031);
	assert_code(y, VAULT_OK);
	assert_string_equal(y.brand, "amex");
	assert_string_equal(y.last4, "0005");
	assert_int_equal(y.cards, 1);
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1001");
	assert_string_equal(y.last4, "0005");
	assert_int_equal(y.exp_month, 3);

	y = card_set(f, "M1002", MASTERCARD, 1, 2030);
	assert_code(y, VAULT_OK);
	assert_string_equal(y.brand, "mastercard");
	assert_int_equal(y.cards, 2);

	/* The vault checks the card itself. */
	y = card_set(f, "M1003", "4111111111111112", 12, 2035);
	assert_code(y, VAULT_BAD_CARD);
	assert_string_equal(y.message, "number: fails the Luhn check");
	y = card_set(f, "M1003", VISA, 5, 2026); /* T0 is June 2026 */
	assert_code(y, VAULT_BAD_CARD);
	assert_non_null(strstr(y.message, "expired"));
	in = card(VISA, 12, 2035);
	in.holder[0] = '\0';
	y = card_set_in(f, "M1003", "M1003", &in);
	assert_code(y, VAULT_BAD_CARD);
	/* Sealed to another member's number. */
	in = card(VISA, 12, 2035);
	y = card_set_in(f, "M1003", "M1004", &in);
	assert_code(y, VAULT_BAD_CARD);
	/* Garbage, nothing, a bad member. */
	{
		struct vault_request q = req(VAULT_OP_CARD_SET, "M1003");

		memset(q.card_set.envelope, 0x42, 100);
		q.card_set.len = 100;
		assert_code(call(f, f->v, &q), VAULT_BAD_CARD);
		q.card_set.len = 0;
		assert_code(call(f, f->v, &q), VAULT_BAD_CARD);
		q.card_set.len = VAULT_ENVELOPE_MAX + 1;
		assert_code(call(f, f->v, &q), VAULT_BAD_CARD);
		q = req(VAULT_OP_CARD_SET, "bad member");
		assert_code(call(f, f->v, &q), VAULT_BAD_REQUEST);
		q = req(VAULT_OP_CARD_SHOW, "");
		assert_code(call(f, f->v, &q), VAULT_BAD_REQUEST);
	}
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1003");
	assert_code(y, VAULT_NO_CARD);
	assert_int_equal(y.cards, 2);

	y = do_op(f, VAULT_OP_CARD_REMOVE, "M1001");
	assert_code(y, VAULT_OK);
	assert_int_equal(y.cards, 1);
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1001");
	assert_code(y, VAULT_NO_CARD);
	y = do_op(f, VAULT_OP_CARD_REMOVE, "M1001");
	assert_code(y, VAULT_NO_CARD);

	/* Sealed: card data is out of reach, at once. */
	y = do_op(f, VAULT_OP_SEAL, NULL);
	assert_true(y.sealed);
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1002");
	assert_code(y, VAULT_SEALED);
	y = card_set(f, "M1005", DISCOVER, 1, 2030);
	assert_code(y, VAULT_SEALED);
	/* Key-file vaults unseal again from their file. */
	y = do_op(f, VAULT_OP_UNSEAL, NULL);
	assert_code(y, VAULT_OK);
	assert_false(y.sealed);
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1002");
	assert_code(y, VAULT_OK);
	assert_int_equal(y.cards, 1);

	/* And the count survives a restart. */
	close_vault(f);
	open_vault(f);
	y = do_op(f, VAULT_OP_STATUS, NULL);
	assert_int_equal(y.cards, 1);
	assert_false(y.sealed);
}

static void
test_authenticate(void **state)
{
	struct fixture *f = *state;
	struct vault_reply y;

	f->order_limit = 50000;
	f->daily_limit = 100000;
	open_vault(f);
	y = auth(f, "M1", 100, "EUR");
	assert_code(y, VAULT_NOT_INITIALIZED);
	close_vault(f);
	init_key_file(f);

	y = card_set(f, "M1", VISA, 12, 2035);
	assert_code(y, VAULT_OK);
	/* The card expires at the end of June 2026, T0's month. */
	y = card_set(f, "M2", MASTERCARD, 6, 2026);
	assert_code(y, VAULT_OK);

	y = auth(f, "M1", 1200, "EUR");
	assert_code(y, VAULT_OK);
	assert_string_equal(y.brand, "visa");
	assert_string_equal(y.last4, "1111");
	assert_int_equal(y.exp_year, 2035);

	y = auth(f, "M9", 1200, "EUR");
	assert_code(y, VAULT_NO_CARD);
	assert_string_equal(y.last4, "");

	/* Bad requests. */
	assert_code(auth(f, "M1", 0, "EUR"), VAULT_BAD_REQUEST);
	assert_code(auth(f, "M1", -5, "EUR"), VAULT_BAD_REQUEST);
	assert_code(auth(f, "M1", 100, "eur"), VAULT_BAD_REQUEST);
	assert_code(auth(f, "M1", 100, "EU"), VAULT_BAD_REQUEST);
	assert_code(auth(f, "", 100, "EUR"), VAULT_BAD_REQUEST);

	/* Expired: the same card, a month later. */
	y = auth(f, "M2", 100, "EUR");
	assert_code(y, VAULT_OK);
	set_now(T0 + 16 * 86400); /* 2026-07-01 */
	y = auth(f, "M2", 100, "EUR");
	assert_code(y, VAULT_EXPIRED);
	set_now(T0);

	/* Per-order limit. */
	y = auth(f, "M1", 50001, "EUR");
	assert_code(y, VAULT_LIMIT);
	assert_string_equal(y.last4, "");
	assert_code(auth(f, "M1", 50000, "EUR"), VAULT_OK);
	/* Daily: 1200 + 50000 so far; 48800 more fit, then no more. */
	assert_code(auth(f, "M1", 48800, "EUR"), VAULT_OK);
	y = auth(f, "M1", 1, "EUR");
	assert_code(y, VAULT_LIMIT);
	assert_non_null(strstr(y.message, "24-hour"));
	/* Each currency on its own. */
	assert_code(auth(f, "M1", 40000, "USD"), VAULT_OK);
	/* Declines did not count; 24 hours later the first spend is gone. */
	set_now(T0 + 86400 - 1);
	assert_code(auth(f, "M1", 1, "EUR"), VAULT_LIMIT);
	set_now(T0 + 86400);
	assert_code(auth(f, "M1", 50000, "EUR"), VAULT_OK);
	assert_code(auth(f, "M1", 50000, "EUR"), VAULT_OK);
	assert_code(auth(f, "M1", 1, "EUR"), VAULT_LIMIT);

	/* The limits persist across a restart. */
	close_vault(f);
	open_vault(f);
	assert_code(auth(f, "M1", 1, "EUR"), VAULT_LIMIT);
	set_now(T0 + 2 * 86400 + 10);
	assert_code(auth(f, "M1", 50000, "EUR"), VAULT_OK);

	/* Sealed: declined at once. */
	y = do_op(f, VAULT_OP_SEAL, NULL);
	y = auth(f, "M1", 100, "EUR");
	assert_code(y, VAULT_SEALED);
	assert_true(y.sealed);
}

/* Many requests at once: batched, every callback exactly once. */
struct counter {
	unsigned ok, other, calls;
};

static void
on_count(void *arg, struct vault_reply *y)
{
	struct counter *c = arg;

	c->calls++;
	if (y->code == VAULT_OK)
		c->ok++;
	else
		c->other++;
}

static void
test_batch(void **state)
{
	struct fixture *f = *state;
	struct counter c = {0};
	struct vault_request q;
	const unsigned n = 2000;

	f->daily_limit = 100 * 1000; /* 1000 authentications of 100 */
	init_key_file(f);
	assert_code(card_set(f, "M1", VISA, 12, 2035), VAULT_OK);
	q = req(VAULT_OP_AUTHENTICATE, "M1");
	q.auth.amount = 100;
	memcpy(q.auth.currency, "EUR", 4);
	for (unsigned i = 0; i < n; i++) {
		q.auth.order_id = i;
		assert_int_equal(vault_submit(f->v, &q, on_count, &c), 0);
	}
	assert_true(vault_pending(f->v) > 0);
	while (c.calls < n)
		assert_int_not_equal(event_base_loop(f->base, EVLOOP_ONCE), -1);
	assert_int_equal(vault_pending(f->v), 0);
	assert_int_equal(c.ok, 1000);
	assert_int_equal(c.other, 1000);

	/* Requests still queued at close get their replies from close. */
	memset(&c, 0, sizeof(c));
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(vault_submit(f->v, &q, on_count, &c), 0);
	close_vault(f);
	assert_int_equal(c.calls, 100);
	assert_int_equal(c.other, 100); /* over the daily limit */
}

static void
test_tampered(void **state)
{
	struct fixture *f = *state;
	struct vault_reply y;
	struct raw r;
	char m1[] = "M1";
	MDB_val key = {.mv_size = 2, .mv_data = m1}, val;
	uint8_t *copy;
	size_t len;
	char *log;

	init_key_file(f);
	assert_code(card_set(f, "M1", VISA, 12, 2035), VAULT_OK);
	assert_code(card_set(f, "M2", MASTERCARD, 12, 2035), VAULT_OK);
	close_vault(f);

	/* Flip one byte of M1's ciphertext, in the file. */
	raw_open(f, &r, "cards", true);
	assert_int_equal(mdb_get(r.txn, r.dbi, &key, &val), 0);
	copy = malloc(val.mv_size);
	assert_non_null(copy);
	memcpy(copy, val.mv_data, val.mv_size);
	copy[val.mv_size - 20] ^= 0x01;
	val.mv_data = copy;
	assert_int_equal(mdb_put(r.txn, r.dbi, &key, &val, 0), 0);
	raw_close(&r, true);
	free(copy);

	open_vault(f);
	y = auth(f, "M1", 100, "EUR");
	assert_code(y, VAULT_TAMPERED);
	assert_string_equal(y.last4, "");
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1");
	assert_code(y, VAULT_TAMPERED);
	/* The vault keeps working for everyone else. */
	y = auth(f, "M2", 100, "EUR");
	assert_code(y, VAULT_OK);
	assert_string_equal(y.last4, "4444");
	/* Rotation refuses to lose the record. */
	y = do_op(f, VAULT_OP_ROTATE, NULL);
	assert_code(y, VAULT_TAMPERED);
	assert_int_equal(y.key_version, 1);
	/* Remove it, and rotation works. */
	assert_code(do_op(f, VAULT_OP_CARD_REMOVE, "M1"), VAULT_OK);
	y = do_op(f, VAULT_OP_ROTATE, NULL);
	assert_code(y, VAULT_OK);
	assert_int_equal(y.resealed, 1);
	close_vault(f);

	log = read_file(f->audit, &len);
	assert_int_equal(
	    count_lines(log,
		"level=error actor=\"test uid=0\" op=authenticate member=\"M1\" result=TAMPERED"),
	    1);
	assert_int_equal(
	    count_lines(log,
		"level=error actor=\"test uid=0\" op=card_show member=\"M1\" result=TAMPERED"),
	    1);
	assert_int_equal(
	    count_lines(log,
		"level=error actor=\"test uid=0\" op=rotate result=TAMPERED"),
	    1);
	free(log);
}

static void
scan_versions(struct fixture *f, uint32_t want, unsigned want_cards)
{
	Twinroute__Vault__SealedCard *sc;
	MDB_cursor *cur;
	MDB_val key, val;
	struct raw r;
	unsigned n = 0;

	raw_open(f, &r, "cards", false);
	assert_int_equal(mdb_cursor_open(r.txn, r.dbi, &cur), 0);
	while (mdb_cursor_get(cur, &key, &val, n ? MDB_NEXT : MDB_FIRST) == 0) {
		sc = twinroute__vault__sealed_card__unpack(
		    NULL, val.mv_size, val.mv_data);
		assert_non_null(sc);
		assert_int_equal(sc->key_version, want);
		assert_int_equal(sc->record_version, 1);
		twinroute__vault__sealed_card__free_unpacked(sc, NULL);
		n++;
	}
	mdb_cursor_close(cur);
	assert_int_equal(n, want_cards);
	raw_close(&r, false);

	/* Exactly one wrapped data key: the current one. */
	raw_open(f, &r, "keys", false);
	assert_int_equal(mdb_cursor_open(r.txn, r.dbi, &cur), 0);
	n = 0;
	while (mdb_cursor_get(cur, &key, &val, n ? MDB_NEXT : MDB_FIRST) == 0) {
		const uint8_t *k = key.mv_data;

		assert_int_equal(key.mv_size, 4);
		assert_int_equal((uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 |
				     (uint32_t)k[2] << 8 | k[3],
		    want);
		n++;
	}
	mdb_cursor_close(cur);
	assert_int_equal(n, 1);
	raw_close(&r, false);
}

static void
test_rotate(void **state)
{
	struct fixture *f = *state;
	struct vault_reply init, y;

	open_vault(f);
	init = init_shares(f, f->v, 3, 2);
	y = do_op(f, VAULT_OP_ROTATE, NULL);
	assert_code(y, VAULT_SEALED);
	y = unseal(f, f->v, init.share_text[0]);
	y = unseal(f, f->v, init.share_text[2]);
	assert_false(y.sealed);
	assert_code(card_set(f, "M1", VISA, 12, 2035), VAULT_OK);
	assert_code(card_set(f, "M2", MASTERCARD, 11, 2034), VAULT_OK);
	assert_code(card_set(f, "M3", AMEX, 10, 2033), VAULT_OK);
	assert_code(auth(f, "M1", 100, "EUR"), VAULT_OK);
	close_vault(f);
	scan_versions(f, 1, 3);

	open_vault(f);
	y = unseal(f, f->v, init.share_text[1]);
	y = unseal(f, f->v, init.share_text[0]);
	assert_false(y.sealed);
	y = do_op(f, VAULT_OP_ROTATE, NULL);
	assert_code(y, VAULT_OK);
	assert_int_equal(y.resealed, 3);
	assert_int_equal(y.key_version, 2);
	/* Readable at once, without a restart. */
	y = do_op(f, VAULT_OP_CARD_SHOW, "M2");
	assert_code(y, VAULT_OK);
	assert_string_equal(y.last4, "4444");
	assert_code(auth(f, "M3", 100, "EUR"), VAULT_OK);
	assert_code(card_set(f, "M4", DISCOVER, 1, 2032), VAULT_OK);
	close_vault(f);
	scan_versions(f, 2, 4);

	/* After a restart: sealed, and the same shares open version 2. */
	open_vault(f);
	y = do_op(f, VAULT_OP_STATUS, NULL);
	assert_true(y.sealed);
	assert_int_equal(y.key_version, 2);
	assert_memory_equal(y.enrol_key, init.enrol_key, VAULT_ENROL_KEY_SIZE);
	y = unseal(f, f->v, init.share_text[2]);
	y = unseal(f, f->v, init.share_text[1]);
	assert_false(y.sealed);
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1");
	assert_code(y, VAULT_OK);
	assert_string_equal(y.last4, "1111");
	y = do_op(f, VAULT_OP_ROTATE, NULL);
	assert_code(y, VAULT_OK);
	assert_int_equal(y.key_version, 3);
	assert_int_equal(y.resealed, 4);
	close_vault(f);
	scan_versions(f, 3, 4);
}

static void
test_key_file(void **state)
{
	struct fixture *f = *state;
	struct vault_reply y, init;
	struct vault *v = NULL;
	struct stat st;
	char path2[160];
	size_t len;
	char *key;

	init = init_key_file(f);
	assert_int_equal(stat(f->key_file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	key = read_file(f->key_file, &len);
	assert_int_equal(len, 65);
	free(key);
	assert_code(do_op(f, VAULT_OP_INIT, NULL), VAULT_ALREADY_INITIALIZED);
	assert_code(card_set(f, "M1", VISA, 12, 2035), VAULT_OK);
	close_vault(f);

	/* Unsealed at start. */
	open_vault(f);
	y = do_op(f, VAULT_OP_STATUS, NULL);
	assert_true(y.initialized);
	assert_false(y.sealed);
	assert_true(y.key_file);
	assert_memory_equal(y.enrol_key, init.enrol_key, VAULT_ENROL_KEY_SIZE);
	assert_code(do_op(f, VAULT_OP_CARD_SHOW, "M1"), VAULT_OK);
	close_vault(f);

	/* Group or other access: refused. */
	assert_int_equal(chmod(f->key_file, 0644), 0);
	assert_int_equal(try_open(f, f->path, f->audit, &v), -EPERM);
	assert_null(v);
	assert_int_equal(chmod(f->key_file, 0640), 0);
	assert_int_equal(try_open(f, f->path, f->audit, &v), -EPERM);
	assert_int_equal(chmod(f->key_file, 0400), 0);
	assert_int_equal(try_open(f, f->path, f->audit, &v), 0);
	v = vault_close(v);

	/* Another vault's key (a valid key file, not this vault's). */
	assert_int_equal(chmod(f->key_file, 0600), 0);
	{
		FILE *fp = fopen(f->key_file, "w");

		assert_non_null(fp);
		fprintf(fp, "%064d\n", 0);
		fclose(fp);
	}
	assert_int_equal(try_open(f, f->path, f->audit, &v), -EKEYREJECTED);
	/* No key file at all. */
	assert_int_equal(unlink(f->key_file), 0);
	assert_int_equal(try_open(f, f->path, f->audit, &v), -ENOENT);

	/* A new vault whose key file exists already: init refuses. */
	snprintf(path2, sizeof(path2), "%s/vault2", f->dir);
	{
		int fd = open(f->key_file, O_WRONLY | O_CREAT, 0600);

		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(try_open(f, path2, f->audit, &v), 0);
	{
		struct vault_request q = req(VAULT_OP_INIT, NULL);

		q.init.key_file = true;
		y = call(f, v, &q);
		assert_code(y, VAULT_ERROR);
		assert_non_null(strstr(y.message, "exists"));
		assert_false(y.initialized);
	}
	v = vault_close(v);

	/* A key file configured for a vault split into shares. */
	f->use_key_file = false;
	assert_int_equal(try_open(f, path2, f->audit, &v), 0);
	init_shares(f, v, 2, 2);
	v = vault_close(v);
	f->use_key_file = true;
	assert_int_equal(try_open(f, path2, f->audit, &v), -EINVAL);
}

static void
test_audit(void **state)
{
	struct fixture *f = *state;
	struct vault_reply init;
	size_t len;
	char *log, *line;
	unsigned lines = 0;

	open_vault(f);
	init = init_shares(f, f->v, 3, 2);
	unseal(f, f->v, init.share_text[0]);
	unseal(f, f->v, "tr1-garbage");
	unseal(f, f->v, init.share_text[1]);
	card_set(f, "M1", VISA, 12, 2035);
	do_op(f, VAULT_OP_CARD_SHOW, "M1");
	auth(f, "M1", 700, "JPY");
	auth(f, "M2", 700, "JPY");
	do_op(f, VAULT_OP_ROTATE, NULL);
	do_op(f, VAULT_OP_CARD_REMOVE, "M1");
	do_op(f, VAULT_OP_STATUS, NULL);
	do_op(f, VAULT_OP_SEAL, NULL);
	close_vault(f);

	log = read_file(f->audit, &len);
	for (line = log; *line; lines++) {
		char *nl = strchr(line, '\n');

		assert_non_null(nl);
		/* ISO-8601 UTC, then the fields. */
		assert_true(nl - line > 24);
		assert_int_equal(line[4], '-');
		assert_int_equal(line[10], 'T');
		assert_int_equal(line[23], 'Z');
		*nl = '\0';
		assert_non_null(strstr(line, " actor="));
		assert_non_null(strstr(line, " op="));
		assert_non_null(strstr(line, " result="));
		assert_non_null(strstr(line, " detail="));
		line = nl + 1;
	}
	free(log);
	log = read_file(f->audit, &len);
	assert_int_equal(lines, 13);
	assert_int_equal(count_lines(log, "op=init result=OK"), 1);
	assert_int_equal(count_lines(log, "op=unseal result=OK"), 2);
	assert_int_equal(count_lines(log, "op=unseal result=BAD_SHARE"), 1);
	assert_int_equal(
	    count_lines(log, "op=card_set member=\"M1\" result=OK"), 1);
	assert_int_equal(
	    count_lines(log, "op=card_show member=\"M1\" result=OK"), 1);
	assert_int_equal(
	    count_lines(log,
		"op=authenticate member=\"M1\" result=OK detail=\"amount=700 currency=JPY order=42"),
	    1);
	assert_int_equal(
	    count_lines(log, "op=authenticate member=\"M2\" result=NO_CARD"),
	    1);
	assert_int_equal(count_lines(log, "op=rotate result=OK"), 1);
	assert_int_equal(
	    count_lines(log, "op=card_remove member=\"M1\" result=OK"), 1);
	/* card_set() asks for the status (the enrolment key) first. */
	assert_int_equal(count_lines(log, "op=status result=OK"), 2);
	assert_int_equal(count_lines(log, "op=seal result=OK"), 1);
	assert_int_equal(count_lines(log, "level=info"), 13);
	assert_false(mem_contains(log, len, VISA));
	assert_false(mem_contains(log, len, init.share_text[0]));
	assert_false(mem_contains(log, len, init.share_text[0] + 10));
	free(log);
}

/* Point the vault's audit fd at /dev/full (or back at the log). */
static void
break_audit(struct fixture *f, bool broken)
{
	int fd = find_fd(broken ? f->audit : "/dev/full");
	int nfd;

	assert_true(fd >= 0);
	nfd = broken ? open("/dev/full", O_WRONLY | O_CLOEXEC)
		     : open(f->audit, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(nfd >= 0);
	assert_int_equal(dup2(nfd, fd), fd);
	close(nfd);
}

static void
test_audit_fails_closed(void **state)
{
	struct fixture *f = *state;
	struct vault_reply y;
	struct vault *v = NULL;
	char path2[160];

	f->daily_limit = 1000;
	init_key_file(f);
	assert_code(card_set(f, "M1", VISA, 12, 2035), VAULT_OK);

	break_audit(f, true);
	y = card_set(f, "M2", MASTERCARD, 12, 2035);
	assert_code(y, VAULT_AUDIT_FAILED);
	assert_string_equal(y.last4, "");
	assert_int_equal(y.cards, 1);
	assert_code(do_op(f, VAULT_OP_CARD_REMOVE, "M1"), VAULT_AUDIT_FAILED);
	assert_code(do_op(f, VAULT_OP_CARD_SHOW, "M1"), VAULT_AUDIT_FAILED);
	assert_code(do_op(f, VAULT_OP_ROTATE, NULL), VAULT_AUDIT_FAILED);
	y = auth(f, "M1", 600, "EUR");
	assert_code(y, VAULT_AUDIT_FAILED);
	assert_string_equal(y.last4, "");
	y = auth(f, "M1", 600, "EUR");
	assert_code(y, VAULT_AUDIT_FAILED);
	break_audit(f, false);

	/* Nothing of that happened. */
	y = do_op(f, VAULT_OP_CARD_SHOW, "M2");
	assert_code(y, VAULT_NO_CARD);
	assert_int_equal(y.cards, 1);
	assert_int_equal(y.key_version, 1);
	assert_code(do_op(f, VAULT_OP_CARD_SHOW, "M1"), VAULT_OK);
	assert_code(auth(f, "M1", 600, "EUR"), VAULT_OK); /* limit 1000 */
	assert_code(auth(f, "M1", 600, "EUR"), VAULT_LIMIT);

	/* Sealing happens even so. */
	break_audit(f, true);
	y = do_op(f, VAULT_OP_SEAL, NULL);
	assert_code(y, VAULT_OK);
	assert_true(y.sealed);
	break_audit(f, false);
	close_vault(f);

	/* A log that cannot take a line from the start: init is refused. */
	snprintf(path2, sizeof(path2), "%s/vault2", f->dir);
	f->use_key_file = false;
	assert_int_equal(try_open(f, path2, "/dev/full", &v), 0);
	{
		struct vault_request q = req(VAULT_OP_INIT, NULL);

		q.init.shares = 3;
		q.init.threshold = 2;
		y = call(f, v, &q);
		assert_code(y, VAULT_AUDIT_FAILED);
		assert_int_equal(y.n_shares, 0);
		assert_false(y.initialized);
	}
	v = vault_close(v);
	assert_int_equal(try_open(f, path2, f->audit, &v), 0);
	y = call(f, v, &(struct vault_request){.op = VAULT_OP_STATUS});
	assert_false(y.initialized);
	v = vault_close(v);
}

static void
assert_no_number(const char *path, const char *number)
{
	char spaced[32], dashed[32];
	size_t len;
	char *buf = read_file(path, &len);

	snprintf(spaced, sizeof(spaced), "%.4s %.4s %.4s %.4s", number,
	    number + 4, number + 8, number + 12);
	snprintf(dashed, sizeof(dashed), "%.4s-%.4s-%.4s-%.4s", number,
	    number + 4, number + 8, number + 12);
	if (mem_contains(buf, len, number) || mem_contains(buf, len, spaced) ||
	    mem_contains(buf, len, dashed))
		fail_msg("%s holds a card number", path);
	if (mem_contains(buf, len, "Testholder"))
		fail_msg("%s holds a cardholder name", path);
	free(buf);
}

static void
test_no_plaintext_at_rest(void **state)
{
	struct fixture *f = *state;
	char data[160], lock[160];

	init_key_file(f);
	assert_code(card_set(f, "M1", VISA, 12, 2035), VAULT_OK);
	assert_code(card_set(f, "M2", MASTERCARD, 12, 2035), VAULT_OK);
	assert_code(do_op(f, VAULT_OP_CARD_SHOW, "M1"), VAULT_OK);
	assert_code(auth(f, "M2", 100, "EUR"), VAULT_OK);
	assert_code(do_op(f, VAULT_OP_ROTATE, NULL), VAULT_OK);
	assert_code(card_set(f, "M2", MASTERCARD, 11, 2035), VAULT_OK);
	close_vault(f);

	snprintf(data, sizeof(data), "%s/data.mdb", f->path);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", f->path);
	/* The test's own sanity: the search does find what is there. */
	{
		FILE *fp = fopen(lock, "rb");

		assert_non_null(fp);
		fclose(fp);
	}
	assert_no_number(data, VISA);
	assert_no_number(data, MASTERCARD);
	assert_no_number(lock, VISA);
	assert_no_number(f->audit, VISA);
	assert_no_number(f->audit, MASTERCARD);
}

static void
test_finder_works(void **state)
{
	struct fixture *f = *state;
	FILE *fp;

	/* assert_no_number() must fail on a file that holds a number. */
	(void)state;
	fp = fopen(f->audit, "w");
	assert_non_null(fp);
	fprintf(fp, "x 4111-1111-1111-1111 y");
	fclose(fp);
	{
		size_t len;
		char *buf = read_file(f->audit, &len);

		assert_true(mem_contains(buf, len, "4111-1111-1111-1111"));
		free(buf);
	}
}

/* A hot copy (twinroutectl backup): a vault opened on it is the same. */
static void
test_backup(void **state)
{
	struct fixture *f = *state;
	struct vault_request q = req(VAULT_OP_BACKUP, NULL);
	Twinroute__Vault__VaultMeta *pm;
	struct vault_reply y;
	struct vault *v = NULL;
	struct stat st;
	char dest[128], file[160], *log;
	uint8_t buf[512];
	uint32_t version = 0;
	struct raw r;
	char key[] = "vault";
	MDB_val k = { sizeof(key) - 1, key }, val;
	size_t len;

	init_key_file(f);
	assert_code(card_set(f, "M1", VISA, 12, 2035), VAULT_OK);

	/* A relative folder: refused. */
	snprintf(q.backup.dir, sizeof(q.backup.dir), "relative");
	assert_code(call(f, f->v, &q), VAULT_BAD_REQUEST);

	snprintf(dest, sizeof(dest), "%s/bk", f->dir);
	snprintf(file, sizeof(file), "%s/data.mdb", dest);
	/* A folder that is not there: the copy fails, nothing is left. */
	snprintf(q.backup.dir, sizeof(q.backup.dir), "%s", dest);
	y = call(f, f->v, &q);
	assert_code(y, VAULT_ERROR);
	assert_int_equal(y.backup_bytes, 0);

	assert_int_equal(mkdir(dest, 0700), 0);
	y = call(f, f->v, &q);
	assert_code(y, VAULT_OK);
	assert_false(y.sealed);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal((uint64_t)st.st_size, y.backup_bytes);
	/* Into the same folder again: the file is there. */
	assert_code(call(f, f->v, &q), VAULT_ERROR);
	assert_int_equal(stat(file, &st), 0);
	log = read_file(f->audit, &len);
	assert_int_equal(count_lines(log, "op=backup result=OK"), 1);
	free(log);
	close_vault(f);

	/* The copy, with the same key file, unseals and has the card. */
	assert_int_equal(try_open(f, dest, f->audit, &v), 0);
	f->v = v;
	y = do_op(f, VAULT_OP_CARD_SHOW, "M1");
	assert_code(y, VAULT_OK);
	assert_string_equal(y.last4, "1111");
	close_vault(f);
	v = NULL;
	assert_int_equal(vault_schema_read(dest, &version), 0);
	assert_int_equal(version, VAULT_SCHEMA_VERSION);

	/* A newer schema: refused as such, and vault_schema_read says which. */
	raw_open(f, &r, "meta", true);
	assert_int_equal(mdb_get(r.txn, r.dbi, &k, &val), 0);
	pm = twinroute__vault__vault_meta__unpack(NULL, val.mv_size,
	    val.mv_data);
	assert_non_null(pm);
	pm->schema_version = VAULT_SCHEMA_VERSION + 1;
	len = twinroute__vault__vault_meta__pack(pm, buf);
	twinroute__vault__vault_meta__free_unpacked(pm, NULL);
	val.mv_size = len;
	val.mv_data = buf;
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &val, 0), 0);
	raw_close(&r, true);
	assert_int_equal(try_open(f, f->path, f->audit, &v), -TR_ESCHEMA);
	assert_null(v);
	assert_int_equal(vault_schema_read(f->path, &version), 0);
	assert_int_equal(version, VAULT_SCHEMA_VERSION + 1);
	assert_int_equal(vault_schema_read(f->dir, &version), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_share_text),
	    cmocka_unit_test_setup_teardown(test_secmem, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_init_and_unseal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_shares, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cards, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_authenticate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_audit_fails_closed, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_no_plaintext_at_rest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_finder_works, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
