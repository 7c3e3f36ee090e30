/* SPDX-License-Identifier: ISC */
/* ctl.h -- the control command table, shared by twinrouted and twinroutectl */
#ifndef TR_CTL_H
#define TR_CTL_H

#include <stddef.h>

#define CTL_PROTO_VERSION 1
/* Control frames carry whole catalogs on import. */
#define CTL_FRAME_MAX (16u * 1024u * 1024u)
/* provider cert: the PEM file the CLI reads, and the DER it sends. */
#define CTL_CERT_MAX (64u * 1024u)
/* backup: the target directory's absolute path, in bytes. */
#define CTL_BACKUP_DIR_MAX 1000

/* The index into ctl_cmds[]; sent on the wire: append only. */
enum ctl_cmd {
	CTL_STATUS = 0,
	CTL_PROVIDER_ADD,
	CTL_PROVIDER_LIST,
	CTL_PROVIDER_SHOW,
	CTL_PROVIDER_DISABLE,
	CTL_SERVICE_ADD,
	CTL_SERVICE_UPDATE,
	CTL_SERVICE_REMOVE,
	CTL_SERVICE_LIST,
	CTL_CATALOG_IMPORT,
	CTL_MEMBER_ADD,
	CTL_MEMBER_SHOW,
	CTL_MEMBER_LIST,
	CTL_MEMBER_DISABLE,
	CTL_MEMBER_PASSWD,
	CTL_MEMBER_CARD_SET,
	CTL_MEMBER_CARD_SHOW,
	CTL_MEMBER_CARD_REMOVE,
	CTL_MEMBER_CARD_CHECK,
	CTL_VAULT_INIT,
	CTL_VAULT_UNSEAL,
	CTL_VAULT_SEAL,
	CTL_VAULT_STATUS,
	CTL_VAULT_ROTATE,
	CTL_MEMBER_UNLOCK,
	CTL_ORDER_LIST,
	CTL_ORDER_SHOW,
	CTL_ORDER_CANCEL,
	CTL_QUEUE_MAIL,
	CTL_ORDER_RESEND_CONFIRMATION,
	CTL_PROVIDER_CERT,
	CTL_PROVIDER_TOKEN,
	CTL_PROVIDER_SESSIONS,
	CTL_QUEUE_PROVIDER,
	CTL_LEDGER,
	CTL_PROVIDER_FAX_IDENT,
	CTL_QUEUE_FAX,
	CTL_FAX_SHOW,
	CTL_FAX_RETRY,
	CTL_MODEM_LIST,
	CTL_BACKUP,
	CTL__COUNT,
};

#define CTL_F_READONLY 0x1u /* changes nothing */
#define CTL_F_SECRET 0x2u   /* reads a secret from the terminal or stdin */

struct ctl_cmd_info {
	const char *name;     /* "provider add": words as typed */
	const char *usage;    /* arguments after the name */
	const char *help;     /* one line */
	unsigned flags;
};

extern const struct ctl_cmd_info ctl_cmds[CTL__COUNT];

/*
 * Find the command named by the first words of argv ("provider", "add").
 * Returns the command, and in *ret_words how many words its name took;
 * -1 if none matches.
 */
int ctl_cmd_lookup(int argc, char *const *argv, int *ret_words);

/*
 * Is s a CSI a fax can announce (provider fax-ident): 1 to
 * CLASS1_IDENT_MAX printable ASCII characters, not only spaces (calls
 * compare idents ignoring spaces)? 0 if so; else -ENODATA (empty),
 * -E2BIG (too long), -EILSEQ (character *ret_pos, counted from 1, is not
 * printable ASCII) or -EINVAL (only spaces).
 */
int ctl_fax_ident_check(const char *s, size_t *ret_pos);

#endif
