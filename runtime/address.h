/* MassTransit's endpoint addresses (RabbitMqEndpointAddress.cs):
 * rabbitmq://host[:port]/[vhost/]name, the port left out when it is the default one, the
 * virtual host when it is "/". */
#ifndef CTXD_RUNTIME_ADDRESS_H
#define CTXD_RUNTIME_ADDRESS_H

#include <stddef.h>

/* Writes the address of exchange (or endpoint) name on the broker of broker_url (an amqp://
 * or amqps:// URL) into buf. 0, CTXD_EINVAL (not such a URL) or CTXD_ETOOBIG. */
int ctxd__address_of(char *buf, size_t len, const char *broker_url, const char *name);

/* Writes the exchange a MassTransit address names into buf: the last path segment of
 * "rabbitmq://host/vhost/name?temporary=true" ("name"), or the address itself when it is
 * not a URI. 0, or CTXD_EINVAL when there is no name. */
int ctxd__address_exchange(const char *address, char *buf, size_t len);

#endif
