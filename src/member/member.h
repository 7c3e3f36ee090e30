/* SPDX-License-Identifier: ISC */
/* member.h -- members in the broker store, and their password hashes */
#ifndef TR_MEMBER_H
#define TR_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.pb-c.h"
#include "store/store.h"

#define MEMBER_NUMBER_MIN 4
#define MEMBER_NUMBER_MAX 16       /* digits */
#define MEMBER_NAME_MAX 200
#define MEMBER_EMAIL_MAX 254
#define MEMBER_PASSWORD_MIN 8
#define MEMBER_PASSWORD_MAX 1024
#define MEMBER_HASH_MAX 160

/* scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds). */
#define MEMBER_SCRYPT_LOG_N 15
#define MEMBER_SCRYPT_R 8
#define MEMBER_SCRYPT_P 1

/* 0, or -EINVAL with *ret_why naming the problem. */
int member_check_number(const char *number, const char **ret_why);
int member_check_email(const char *email, const char **ret_why);
int member_check_name(const char *name, const char **ret_why);
int member_check_password(const char *password, const char **ret_why);

/*
 * Hash a password with salted scrypt into
 * "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (base64). Blocking: call it from
 * a worker thread, never from the loop. 0, -ENOMEM, -EIO.
 */
int member_password_hash(const char *password, char ret_hash[MEMBER_HASH_MAX]);
/*
 * Does password match hash? Parameters come from the hash. Compares in
 * constant time. Blocking like member_password_hash. 1 match, 0 no match,
 * -EINVAL for a hash this code cannot read.
 */
int member_password_verify(const char *password, const char *hash);

/* Read a member; *ret_rec is unpacked (free with
 * twinroute__store__member_record__free_unpacked). -ENOENT. */
int member_get(struct store_txn *txn, const char *number,
    Twinroute__Store__MemberRecord **ret_rec);
/* Write a member record (insert or replace). */
int member_put(struct store_txn *txn, const Twinroute__Store__MemberRecord *rec);

/* Visit every member in number order; cb as in store_iter. The record
 * is valid during the call only. */
typedef int (*member_iter_fn)(const Twinroute__Store__MemberRecord *rec,
    void *arg);
int member_iter(struct store_txn *txn, member_iter_fn cb, void *arg);

#endif
