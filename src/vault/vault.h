/* SPDX-License-Identifier: ISC */
/* vault.h -- the sealed card vault: the whole interface the loop sees */
#ifndef TR_VAULT_H
#define TR_VAULT_H

/*
 * The vault is one thread that owns its own LMDB environment, its keys and
 * every plaintext card field. The loop hands it requests and gets replies
 * back on the loop (an eventfd wakes it); nothing here blocks the loop.
 *
 * No type in this header holds a card number. Card data enters the vault
 * only as an enrolment envelope (src/vault/envelope.h): ciphertext sealed
 * by the client to the vault's enrolment public key. Card data leaves it
 * only as brand, last four digits and expiry -- and as the encoded fax
 * page (VAULT_OP_FAX_PAGE), in locked memory.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

struct fax_doc;

#define VAULT_MEMBER_MAX 32        /* member number, bytes */
#define VAULT_ACTOR_MAX 64         /* who asked, for the audit line */
#define VAULT_SHARES_MAX 16
#define VAULT_SHARE_TEXT_MAX 128   /* one share as text, NUL included */
#define VAULT_ENVELOPE_MAX 1024
#define VAULT_ENROL_KEY_SIZE 32    /* X25519 public key */
#define VAULT_PENDING_MAX 4096
#define VAULT_BACKUP_PATH_MAX 1024 /* backup target directory, NUL included */
#define VAULT_SCHEMA_VERSION 1     /* VaultMeta.schema_version */

struct vault;

struct vault_opts {
	const char *path;          /* directory of the vault's LMDB env; 0700 */
	uint64_t map_size;         /* bytes, preallocated on disk; 0: 64 MiB */
	const char *key_file;      /* NULL or "": shares; else the KEK file */
	const char *audit_log;     /* append-only audit file */
	int64_t order_limit;       /* largest amount per authentication, minor units */
	int64_t daily_limit;       /* rolling 24 h total per member and currency */
	/* (either limit <= 0: no such limit) */
	time_t (*now)(void);       /* NULL: time(NULL); tests set a fake clock */
	/*
	 * Every operation's audit line is written before its effect. Lines of
	 * operations that change keys or cards are fdatasynced before their
	 * replies; so are those of successful authentications (one fdatasync
	 * per batch) -- unless lazy_auth_sync: then they are fdatasynced with
	 * the vault's store, at most a second later, and a crash loses the
	 * last second of authentications from the audit log and the spend
	 * log alike. Saves a disk flush per batch on the authentication path.
	 */
	bool lazy_auth_sync;

	/* The card fax page (VAULT_OP_FAX_PAGE). */
	const char *fax_font;      /* NULL: FAX_PAGE_FONT_DEFAULT */
	unsigned fax_font_px;      /* cap height; 0: the default */
	const char *fax_broker;    /* the broker's name on the page; NULL: "twinroute" */
	const char *fax_ident;     /* our fax ident on the page; NULL: "" */
};

enum vault_op {
	VAULT_OP_STATUS = 0,
	VAULT_OP_INIT,             /* init: shares/threshold, or key file */
	VAULT_OP_UNSEAL,           /* unseal: one share */
	VAULT_OP_SEAL,
	VAULT_OP_ROTATE,
	VAULT_OP_CARD_SET,         /* member + card_set envelope */
	VAULT_OP_CARD_SHOW,        /* member */
	VAULT_OP_CARD_REMOVE,      /* member */
	VAULT_OP_AUTHENTICATE,     /* member + auth */
	VAULT_OP_AUDIT,            /* an admin action's line for the audit log */
	VAULT_OP_FAX_PAGE,         /* member + fax: compose the card fax page */
	VAULT_OP_BACKUP,           /* backup: copy the environment, compacted */
	VAULT_OP__COUNT,
};

enum vault_code {
	VAULT_OK = 0,
	VAULT_SEALED,              /* the keys are not in memory */
	VAULT_NO_CARD,
	VAULT_EXPIRED,
	VAULT_DISABLED,            /* the member may not pay (set by the caller) */
	VAULT_LIMIT,               /* over the per-order or 24-hour limit */
	VAULT_TAMPERED,            /* a sealed record failed its GCM check */
	VAULT_NOT_INITIALIZED,
	VAULT_ALREADY_INITIALIZED,
	VAULT_BAD_SHARE,           /* the share's checksum fails: mistyped */
	VAULT_WRONG_VAULT,         /* a good share of another vault */
	VAULT_BAD_KEY,             /* the shares combine to the wrong key */
	VAULT_BAD_CARD,            /* the envelope or the card in it is invalid */
	VAULT_BAD_REQUEST,
	VAULT_AUDIT_FAILED,        /* the audit log cannot be written: refused */
	VAULT_ERROR,               /* store or system failure; message says */
	VAULT_CODE__COUNT,
};

struct vault_request {
	enum vault_op op;
	char actor[VAULT_ACTOR_MAX];      /* "ctl uid=0 pid=42", "order" */
	char member[VAULT_MEMBER_MAX + 1];
	union {
		struct {
			unsigned shares;          /* 0 with key_file */
			unsigned threshold;
			bool key_file;            /* write opts.key_file instead */
		} init;
		struct {
			char share[VAULT_SHARE_TEXT_MAX];  /* wiped after use */
		} unseal;
		struct {
			uint8_t envelope[VAULT_ENVELOPE_MAX];
			size_t len;
		} card_set;
		struct {
			/* "member add: ok": what was done and how it
			 * ended; never a secret. */
			char detail[160];
			bool failed;
		} audit;
		struct {
			int64_t amount;           /* minor units */
			char currency[4];
			uint64_t order_id;
		} auth;
		struct {
			/* The order's fields for the page (never card data). */
			uint64_t order_id;
			char provider_id[65];
			char provider_name[129];
			char fax_ref[24];
			char service_name[129];
			uint32_t quantity;
			char amount[48];          /* "12.50 EUR" */
			int64_t time_unix;        /* shown on the page */
		} fax;
		struct {
			/* An existing, empty directory (absolute): gets
			 * data.mdb, fsynced with the directory. The key
			 * file is not copied. */
			char dir[VAULT_BACKUP_PATH_MAX];
		} backup;
	};
};

struct vault_reply {
	enum vault_op op;
	enum vault_code code;
	char message[200];                /* human detail; never card data */

	/* STATUS (every reply carries it, as of after the operation) */
	bool initialized;
	bool sealed;
	bool key_file;                    /* unsealed by a key file */
	unsigned shares, threshold;       /* configured split */
	unsigned progress;                /* valid shares given so far */
	uint32_t key_version;             /* current data key */
	uint32_t cards;
	uint8_t enrol_key[VAULT_ENROL_KEY_SIZE]; /* when initialized */

	/* INIT: the shares, each to be shown once (wiped by vault_reply_free) */
	unsigned n_shares;
	char share_text[VAULT_SHARES_MAX][VAULT_SHARE_TEXT_MAX];

	/* CARD_SET, CARD_SHOW, AUTHENTICATE with VAULT_OK */
	char brand[16];                   /* "visa", "mastercard", ... */
	char last4[5];
	unsigned exp_month, exp_year;     /* 1..12, four digits */

	/* ROTATE */
	uint32_t resealed;                /* records moved to the new key */

	/* BACKUP with VAULT_OK: the size of the copy */
	uint64_t backup_bytes;

	/*
	 * FAX_PAGE with VAULT_OK: the encoded page (src/vault/faxdoc.h), in
	 * locked memory. The callback takes it by setting this to NULL and
	 * frees it with fax_doc_free() when the call is over; otherwise it is
	 * freed, wiped, after the callback.
	 */
	struct fax_doc *fax_doc;
};

typedef void (*vault_reply_fn)(void *arg, struct vault_reply *reply);

/*
 * Start the vault thread. Creates the directory and environment if
 * needed. Unsealed at start if opts->key_file names an existing key file
 * (mode 0600 or stricter, else refused); sealed otherwise.
 * -EINVAL (options; or a key file configured for a vault split into
 * shares), -EPERM (the key file or the directory allows group or other
 * access, or is not ours), -ENOENT (a key-file vault without its key
 * file), -EKEYREJECTED (the key file does not match the vault),
 * -EBADMSG (the vault's records fail their checks), -TR_ESCHEMA (the
 * vault records another schema version than VAULT_SCHEMA_VERSION:
 * vault_schema_read() tells which), or the error opening the environment
 * or the audit log.
 */
int vault_open(const struct vault_opts *opts, struct event_base *base,
    struct vault **ret_vault);
/*
 * The schema version the vault at path records (read-only; the vault must
 * not be open): for the message after vault_open said -TR_ESCHEMA.
 * -ENOENT if it is not initialized.
 */
int vault_schema_read(const char *path, uint32_t *ret_version);
/* Seal (wipe every key), stop and join the thread. NULL-safe; returns NULL. */
struct vault *vault_close(struct vault *v);

/*
 * Queue a request; cb(arg, reply) runs later on the loop, exactly once,
 * with a reply that is valid only during the call (and wiped after it).
 * The request is copied: the caller may reuse or wipe it at once.
 * -ENOMEM, -ESHUTDOWN, -EAGAIN (VAULT_PENDING_MAX requests pending).
 * Replies still queued when vault_close() runs are delivered from inside
 * it; a callback must not call vault_close().
 */
int vault_submit(struct vault *v, const struct vault_request *req,
    vault_reply_fn cb, void *arg);

/* Requests queued or in progress. */
size_t vault_pending(const struct vault *v);
/* Initialized and sealed as of the last reply delivered (every reply
 * carries them), or of vault_open before any. Loop thread. */
void vault_state(const struct vault *v, bool *ret_initialized,
    bool *ret_sealed);

/* Stable names: "OK", "VAULT_SEALED", "NO_CARD", ... */
const char *vault_strcode(enum vault_code code);
const char *vault_strop(enum vault_op op);

#endif
