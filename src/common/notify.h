/* SPDX-License-Identifier: ISC */
/* notify.h -- tell the service manager about start, reload and stop */
#ifndef TR_NOTIFY_H
#define TR_NOTIFY_H

/*
 * systemd's sd_notify(3) protocol without libsystemd: when NOTIFY_SOCKET
 * names an AF_UNIX datagram socket (a path, or an abstract name written
 * with a leading '@'), send it one datagram of newline-separated
 * assignments ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...").
 * Returns 1 when sent, 0 when NOTIFY_SOCKET is not set, or -errno.
 */
int notify_send(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC systemd wants beside it. */
int notify_reloading(void);

#endif
