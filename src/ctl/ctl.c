/* SPDX-License-Identifier: ISC */
/* ctl.c -- the control command table, and the checks both sides make */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "ctl/ctl.h"
#include "common/macro.h"
#include "fax/class1.h"

const struct ctl_cmd_info ctl_cmds[CTL__COUNT] = {
	[CTL_STATUS] = { "status", "",
	    "version, uptime, connections, counts, store use", CTL_F_READONLY },
	[CTL_PROVIDER_ADD] = { "provider add",
	    "ID --name NAME --email ADDR --fax +E164",
	    "register a provider", 0 },
	[CTL_PROVIDER_LIST] = { "provider list", "",
	    "list providers", CTL_F_READONLY },
	[CTL_PROVIDER_SHOW] = { "provider show", "ID",
	    "show one provider and its services", CTL_F_READONLY },
	[CTL_PROVIDER_DISABLE] = { "provider disable", "ID",
	    "disable a provider: its services leave the catalog", 0 },
	[CTL_SERVICE_ADD] = { "service add",
	    "ID --provider P --category C --name N --price MINOR --currency CUR"
	    " [--description D]",
	    "add a service", 0 },
	[CTL_SERVICE_UPDATE] = { "service update",
	    "ID [--provider P] [--category C] [--name N] [--price MINOR]"
	    " [--currency CUR] [--description D] [--active yes|no]",
	    "change fields of a service", 0 },
	[CTL_SERVICE_REMOVE] = { "service remove", "ID",
	    "remove a service", 0 },
	[CTL_SERVICE_LIST] = { "service list",
	    "[--provider P] [--category C]",
	    "list services, inactive ones included", CTL_F_READONLY },
	[CTL_CATALOG_IMPORT] = { "catalog import", "FILE",
	    "load providers and services from JSON Lines, all or nothing", 0 },
	[CTL_MEMBER_ADD] = { "member add", "NUMBER --name NAME --email ADDR",
	    "register a member; the password is read from the terminal or "
	    "standard input", CTL_F_SECRET },
	[CTL_MEMBER_SHOW] = { "member show", "NUMBER",
	    "show a member, with the card's brand and last four", CTL_F_READONLY },
	[CTL_MEMBER_LIST] = { "member list", "",
	    "list members", CTL_F_READONLY },
	[CTL_MEMBER_DISABLE] = { "member disable", "NUMBER",
	    "disable a member: no login, no card authentication", 0 },
	[CTL_MEMBER_PASSWD] = { "member passwd", "NUMBER",
	    "set a member's password (read from the terminal or stdin)",
	    CTL_F_SECRET },
	[CTL_MEMBER_CARD_SET] = { "member card set", "NUMBER",
	    "register a member's card: number, expiry (MM/YY) and cardholder "
	    "name are read from the terminal or stdin, never from arguments",
	    CTL_F_SECRET },
	[CTL_MEMBER_CARD_SHOW] = { "member card show", "NUMBER",
	    "brand, last four digits and expiry of a member's card",
	    CTL_F_READONLY },
	[CTL_MEMBER_CARD_REMOVE] = { "member card remove", "NUMBER",
	    "delete a member's card from the vault", 0 },
	[CTL_MEMBER_CARD_CHECK] = { "member card check",
	    "NUMBER --amount MINOR --currency CUR",
	    "authenticate a member's card for an amount, as an order would",
	    0 },
	[CTL_VAULT_INIT] = { "vault init",
	    "[--shares N --threshold K | --key-file]",
	    "create the vault's keys; prints each share once (default 5 "
	    "shares, 3 to unseal)", 0 },
	[CTL_VAULT_UNSEAL] = { "vault unseal", "",
	    "give one key share (read from the terminal or stdin)",
	    CTL_F_SECRET },
	[CTL_VAULT_SEAL] = { "vault seal", "",
	    "wipe the vault's keys from memory", 0 },
	[CTL_VAULT_STATUS] = { "vault status", "",
	    "sealed or not, unseal progress, key version, cards",
	    CTL_F_READONLY },
	[CTL_VAULT_ROTATE] = { "vault rotate", "",
	    "new data key; re-seal every card under it", 0 },
	[CTL_MEMBER_UNLOCK] = { "member unlock", "NUMBER",
	    "lift a login lockout after too many failed passwords", 0 },
	[CTL_ORDER_LIST] = { "order list",
	    "[--state S] [--member M] [--provider P] [--limit N]",
	    "list orders, newest first", CTL_F_READONLY },
	[CTL_ORDER_SHOW] = { "order show", "ID",
	    "show an order with its history", CTL_F_READONLY },
	[CTL_ORDER_CANCEL] = { "order cancel", "ID",
	    "cancel an order that has not been dispatched", 0 },
	[CTL_QUEUE_MAIL] = { "queue mail", "",
	    "confirmations not sent yet (queued, deferred, sending) and the "
	    "mailer's counters", CTL_F_READONLY },
	[CTL_ORDER_RESEND_CONFIRMATION] = { "order resend-confirmation", "ID",
	    "send an order's confirmation again, with a new token (the old "
	    "one stops working)", 0 },
	[CTL_PROVIDER_CERT] = { "provider cert", "ID FILE | ID --remove",
	    "pin the client certificate (PEM FILE) a provider proves itself "
	    "with; prints its SHA-256", 0 },
	[CTL_PROVIDER_TOKEN] = { "provider token", "ID [--remove]",
	    "issue a provider a new token, printed once (only its hash is "
	    "kept); --remove revokes it", 0 },
	[CTL_PROVIDER_SESSIONS] = { "provider sessions", "",
	    "the providers connected now, with their dispatch windows",
	    CTL_F_READONLY },
	[CTL_QUEUE_PROVIDER] = { "queue provider", "[ID]",
	    "dispatch jobs waiting in the provider outbox, of every provider "
	    "or of one",
	    CTL_F_READONLY },
	[CTL_LEDGER] = { "ledger",
	    "PROVIDER [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--csv]",
	    "a provider's fulfilled and charged orders, by the day they were "
	    "fulfilled (UTC; --to excluded), with totals per currency",
	    CTL_F_READONLY },
	[CTL_PROVIDER_FAX_IDENT] = { "provider fax-ident",
	    "ID CSI | ID --remove",
	    "pin the ident (CSI, up to 20 printable characters) the provider's "
	    "fax must announce before the card page is sent; --remove unpins "
	    "it", 0 },
	[CTL_QUEUE_FAX] = { "queue fax", "[ID] [--limit N]",
	    "card fax jobs waiting or in a call, of every provider or of one, "
	    "and the dispatcher's counters", CTL_F_READONLY },
	[CTL_FAX_SHOW] = { "fax show", "ORDER",
	    "an order's card fax: its state, the last call's report and its "
	    "job", CTL_F_READONLY },
	[CTL_FAX_RETRY] = { "fax retry", "ORDER",
	    "send a failed card fax again with fresh counters, or a queued "
	    "one now", 0 },
	[CTL_MODEM_LIST] = { "modem list", "",
	    "the fax modems: state, calls, last result and the job in each",
	    CTL_F_READONLY },
	[CTL_BACKUP] = { "backup", "DIR",
	    "a consistent copy of the broker store and the vault while the "
	    "daemon serves, into DIR (new or empty; the vault's key is not "
	    "copied)", 0 },
};

int
ctl_cmd_lookup(int argc, char *const *argv, int *ret_words)
{
	for (size_t i = 0; i < ELEMENTSOF(ctl_cmds); i++) {
		const char *name = ctl_cmds[i].name;
		int w = 0;
		const char *p = name;

		while (*p != '\0' && w < argc) {
			size_t n = strcspn(p, " ");
			if (strlen(argv[w]) != n || strncmp(argv[w], p, n) != 0)
				break;
			w++;
			p += n;
			if (*p == ' ')
				p++;
		}
		if (*p == '\0' && w > 0) {
			*ret_words = w;
			return (int)i;
		}
	}
	return -1;
}

int
ctl_fax_ident_check(const char *s, size_t *ret_pos)
{
	size_t n = strlen(s);
	bool seen = false;

	if (n == 0)
		return -ENODATA;
	if (n > CLASS1_IDENT_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch > 0x7e) {
			*ret_pos = i + 1;
			return -EILSEQ;
		}
		if (ch != ' ')
			seen = true;
	}
	return seen ? 0 : -EINVAL;
}
