/* MassTransit's RabbitMQ addresses: what it writes as sourceAddress, destinationAddress
 * and responseAddress, "rabbitmq://host[:port]/[vhost/]name". Pure. */
#ifndef CTXD_RUNTIME_ADDRESS_H
#define CTXD_RUNTIME_ADDRESS_H

#include <stddef.h>

/* RabbitMQ's Direct Reply-To pseudo-queue: a reply to it goes through the default exchange
 * with the request's reply_to property as routing key. */
#define CTXD__REPLY_TO "amq.rabbitmq.reply-to"

/* Writes the address of exchange (or endpoint) `name` on the broker of broker_url (an
 * amqp:// or amqps:// URL) into buf, as MassTransit builds it: scheme rabbitmq (rabbitmqs
 * over TLS), the port only when not the scheme's default, the virtual host (escaped) only
 * when not "/". 0, CTXD_EINVAL (not an AMQP URL) or CTXD_ETOOBIG (buf too small). */
int ctxd__address_build(const char *broker_url, const char *name, char *buf, size_t len);

/* Writes the exchange a MassTransit address names into buf: the last path segment of
 * "rabbitmq://host/vhost/name?temporary=true" ("name"), or the address itself when it is
 * not a URI. 0, or CTXD_EINVAL when there is no name. */
int ctxd__address_exchange(const char *address, char *buf, size_t len);

/* 1 when address names Direct Reply-To (its path ends in amq.rabbitmq.reply-to), else 0. */
int ctxd__address_is_reply_to(const char *address);

#endif
