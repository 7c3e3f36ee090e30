/* SPDX-License-Identifier: ISC */
/* ctl_check.c -- the control protocol's request fields, as the daemon checks them */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "ctl/ctl.h"
#include "ctl/ctl_check.h"

int
ctl_check_request(const Twinroute__Ctl__CtlRequest *req, char *msg, size_t len)
{
	if (req->version != CTL_PROTO_VERSION) {
		snprintf(msg, len, "control protocol version %" PRIu32
		    " not supported; this daemon speaks %d", req->version,
		    CTL_PROTO_VERSION);
		return -EPROTO;
	}
	if (req->command >= CTL__COUNT) {
		snprintf(msg, len, "unknown command %" PRIu32, req->command);
		return -ENOSYS;
	}
	return 0;
}

int
ctl_order_id_parse(const char *s, uint64_t *ret_id)
{
	unsigned long long v;
	char *end;
	int base = 10;

	/* A digit first: strtoull would skip blanks and take signs. */
	if (strlen(s) == 16 && isxdigit((unsigned char)s[0]))
		base = 16;
	else if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	else if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0' || v == 0)
		return -EINVAL;
	*ret_id = v;
	return 0;
}

const char *
ctl_check_backup_dir(const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)
		return "backup: the target folder is missing";
	if (dir[0] != '/')
		return "backup: the target folder must be an absolute path";
	if (n > CTL_BACKUP_DIR_MAX)
		return "backup: the target folder's path is too long";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)dir[i] < 0x20 || dir[i] == 0x7f)
			return "backup: the target folder's path holds a "
			    "control character";
	return NULL;
}

/* Is der one whole DER X.509 certificate, nothing after it? */
static bool
ctl_cert_der_whole(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL)
		return false;
	X509_free(x);
	return p == der + len;
}

const char *
ctl_check_cert(bool remove, const uint8_t *der, size_t len)
{
	if (remove)
		return len > 0 ? "a certificate and remove: one or the other" :
		    NULL;
	if (len == 0)
		return "cert_der: missing";
	if (len > CTL_CERT_MAX)
		return "cert_der: larger than 64 KiB";
	if (!ctl_cert_der_whole(der, len))
		return "cert_der: not one DER X.509 certificate";
	return NULL;
}

const char *
ctl_check_card_check(const Twinroute__Ctl__CardCheck *cc)
{
	if (cc == NULL || cc->amount <= 0 || strlen(cc->currency) != 3)
		return "card_check: a positive amount and a currency are "
		    "needed";
	return NULL;
}

const char *
ctl_check_ledger(const Twinroute__Ctl__LedgerQuery *lq, uint64_t *ret_from,
    uint64_t *ret_to)
{
	uint64_t from = 0, to = 0;

	if (lq != NULL) {
		from = lq->from_unix_ms;
		to = lq->to_unix_ms;
	}
	if (to != 0 && to <= from)
		return "ledger: the period must end after it starts";
	*ret_from = from;
	*ret_to = to;
	return NULL;
}
