/* Message names as MassTransit writes them on RabbitMQ. A message type has two names that
 * come from two formatters: the URN name ("Ns:Outer+Inner", "MassTransit:Fault[[Ns:Type]]",
 * what messageType lists after "urn:message:") and the exchange name ("Ns:Outer-Inner",
 * "MassTransit:Fault--Ns:Type--"). ctxd names a message type by its URN name and derives
 * the exchange name here, unless a contract states another. Pure: no I/O, no state. */
#ifndef CTXD_RUNTIME_MSGNAME_H
#define CTXD_RUNTIME_MSGNAME_H

#include <stddef.h>

/* Writes the RabbitMQ exchange name of the URN name `type` (without "urn:message:") into
 * buf, as MassTransit's RabbitMqMessageNameFormatter does: nested types joined by "-",
 * generic arguments between "--" and separated by "::", an argument's namespace left out
 * when it is the generic type's. 0, CTXD_EINVAL (brackets that do not pair, an empty
 * name) or CTXD_ETOOBIG (buf too small). */
int ctxd__msgname_exchange(const char *type, char *buf, size_t len);

/* 1 when URN names a and b are the same ignoring ASCII case (MassTransit matches a
 * consumer's URN that way), else 0. */
int ctxd__msgname_eq(const char *a, const char *b);

#endif
