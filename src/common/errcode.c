/* SPDX-License-Identifier: ISC */
/* errcode.c -- messages for project error codes */
#include <string.h>

#include "common/errcode.h"

static const char *const messages[] = {
	[TR_EFRAME_TOO_LARGE - TR_EBASE] = "frame too large",
	[TR_EBADMSG - TR_EBASE] = "message does not decode",
	[TR_EVERSION - TR_EBASE] = "protocol version not supported",
	[TR_EEXISTS - TR_EBASE] = "already exists",
	[TR_ESCHEMA - TR_EBASE] = "store schema version not supported",
	[TR_EINVAL_FIELD - TR_EBASE] = "invalid field",
	[TR_EPAGE_TOKEN - TR_EBASE] = "page token does not decode",
};

const char *
tr_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err < 0)
		err = -err;
	if (err > TR_EBASE && err < TR_ELAST && messages[err - TR_EBASE])
		return messages[err - TR_EBASE];
	if (err < TR_EBASE)
		return strerror(err);
	return "unknown error";
}
