/* SPDX-License-Identifier: ISC */
/* errcode.h -- project error codes: functions return 0, -errno or -TR_E* */
#ifndef TR_ERRCODE_H
#define TR_ERRCODE_H

/* Project codes live above the errno range, so -TR_EFOO never collides. */
enum {
	TR_EBASE = 10000,
	TR_EFRAME_TOO_LARGE,  /* length prefix over the limit */
	TR_EBADMSG,           /* protobuf does not decode */
	TR_EVERSION,          /* protocol version mismatch */
	TR_EEXISTS,           /* record already exists */
	TR_ESCHEMA,           /* store schema version unknown */
	TR_EINVAL_FIELD,      /* a field failed validation (message says which) */
	TR_EPAGE_TOKEN,       /* page token does not decode */
	TR_ELAST,
};

/* A readable message for 0, -errno or -TR_E*. Never NULL. */
const char *tr_strerror(int err);

#endif
