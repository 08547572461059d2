/*
 * The console's end of a socketpair to an in-process receiver thread (the
 * local receiver, SFTP mode): non-blocking send and recv, and the drain
 * before the join. Shared by transport_local.c and transport_sftp.c.
 */
#ifndef DS_TRANSPORT_SOCK_END_H
#define DS_TRANSPORT_SOCK_END_H

#include <stddef.h>
#include <sys/types.h>

#include "distsync/transport.h"

/* Sends up to n bytes on t->wfd without blocking. Returns the bytes sent,
 * 0 when the socket is full, n (swallowed, *dead set) when the receiver
 * has gone (its end is reported by the next read), or DS_ETRANSPORT with
 * "WHO: write: reason" in t->err. */
long ds__sock_send(ds_transport_t *t, const void *p, size_t n, int *dead, const char *who);

/* Receives up to cap bytes from fd (< 0: none) without blocking. Returns
 * the bytes read, 0 when nothing is waiting, or -1 with errno (EPIPE for
 * the end of the stream or no fd). */
ssize_t ds__sock_recv(int fd, void *buf, size_t cap);

/* Drops the receiver's last replies until it has closed its end. */
void ds__sock_drain(int fd);

#endif
