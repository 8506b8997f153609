/* Contracts as an AsyncAPI document. See asyncapi.h. */
#include "asyncapi.h"

#include <stdio.h>
#include <string.h>

#include <ctxd/version.h>

#include "cli.h"
#include "contract_schema.h"
#include "envelope.h"

/* A type, or [type, "null"] for a nullable field. */
static json_t *type_of(const char *type, int nullable) {
  return nullable ? json_pack("[ss]", type, "null") : json_string(type);
}

static json_t *schema_of(const ctxd__schema_type_t *t, int nullable) {
  json_t *s = NULL;
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
    s = json_pack("{s:o}", "type", type_of("string", nullable));
    if (s && t->max_length) json_object_set_new(s, "maxLength", json_integer((json_int_t)t->max_length));
    break;
  case CTXD__SCHEMA_INT:
    s = json_pack("{s:o}", "type", type_of("integer", nullable));
    if (s && t->has_min) json_object_set_new(s, "minimum", json_integer(t->min));
    if (s && t->has_max) json_object_set_new(s, "maximum", json_integer(t->max));
    break;
  case CTXD__SCHEMA_DECIMAL:
    /* a .NET decimal: ctxd writes a string, reads a number too */
    s = json_pack("{s:[sss*], s:s}", "type", "string", "number", nullable ? "null" : NULL, "pattern",
                  "^-?[0-9]{1,29}(\\.[0-9]{1,28})?$");
    break;
  case CTXD__SCHEMA_BOOL: s = json_pack("{s:o}", "type", type_of("boolean", nullable)); break;
  case CTXD__SCHEMA_UUID:
    s = json_pack("{s:o, s:s}", "type", type_of("string", nullable), "format", "uuid");
    break;
  case CTXD__SCHEMA_DATETIME:
    s = json_pack("{s:o, s:s}", "type", type_of("string", nullable), "format", "date-time");
    break;
  case CTXD__SCHEMA_ENUM: {
    json_t *values = json_array(), *names = json_array();
    for (size_t i = 0; i < t->nvalues; i++) {
      json_array_append_new(values, json_integer(t->values[i].value));
      json_array_append_new(names, json_string(t->values[i].name));
    }
    if (nullable) json_array_append_new(values, json_null());
    s = json_pack("{s:o, s:o, s:o}", "type", type_of("integer", nullable), "enum", values, "x-enum-names",
                  names);
    break;
  }
  case CTXD__SCHEMA_OBJECT: {
    json_t *props = json_object(), *required = json_array();
    for (size_t i = 0; i < t->nfields; i++) {
      const ctxd__schema_field_t *f = &t->fields[i];
      json_t *p = schema_of(&f->type, f->nullable || !f->required);
      if (p && f->description) json_object_set_new(p, "description", json_string(f->description));
      if (p && f->example) json_object_set_new(p, "examples", json_pack("[O]", f->example));
      json_object_set_new(props, f->name, p);
      if (f->required) json_array_append_new(required, json_string(f->name));
    }
    s = json_pack("{s:o, s:o, s:o}", "type", type_of("object", nullable), "properties", props, "required",
                  required);
    break;
  }
  case CTXD__SCHEMA_ARRAY:
    s = json_pack("{s:o, s:o}", "type", type_of("array", nullable), "items", schema_of(t->items, 0));
    if (s && t->max_items) json_object_set_new(s, "maxItems", json_integer((json_int_t)t->max_items));
    break;
  }
  return s;
}

json_t *ctxd__asyncapi_schema(const ctxd__schema_type_t *t) { return t ? schema_of(t, 0) : NULL; }

/* The envelope MassTransit reads (the members ctxd needs are required), with the message;
 * messageType lists the type's URN among others (a .NET subtype adds its own). */
static json_t *envelope_schema(const ctxd__contract_t *k, const char *urn) {
  json_t *message = ctxd__asyncapi_schema(ctxd__contract_body(k));
  if (message)
    json_object_set_new(message, "description",
                        json_string("Property names match ignoring case; ctxd writes them as listed."));
  return json_pack("{s:s, s:[sss], s:{s:{s:s, s:s}, s:{s:s, s:{s:s}, s:{s:s}}, s:o}}", "type", "object",
                   "required", "messageId", "messageType", "message", "properties", "messageId", "type",
                   "string", "format", "uuid", "messageType", "type", "array", "items", "type", "string",
                   "contains", "const", urn, "message", message);
}

/* A component key (AsyncAPI 2: letters, digits, '.', '-', '_'): the message type, ':' as '_'. */
static void component_key(char *buf, size_t len, const char *type) {
  snprintf(buf, len, "%s", type);
  for (char *p = buf; *p; p++)
    if (!strchr(".-_", *p) && !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
        !(*p >= '0' && *p <= '9'))
      *p = '_';
}

static json_t *message_of(const ctxd__contract_t *k) {
  json_t *urns = json_array();
  json_array_append_new(urns, json_pack("s+", CTXD__URN_PREFIX, ctxd__contract_type(k)));
  for (size_t i = 0; i < ctxd__contract_nbases(k); i++)
    json_array_append_new(urns, json_pack("s+", CTXD__URN_PREFIX, ctxd__contract_base(k, i)));
  return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:i, s:s}", "name", ctxd__contract_type(k), "title",
                   ctxd__contract_type(k), "summary", ctxd__contract_description(k), "contentType",
                   CTXD__ENVELOPE_CONTENT_TYPE, "payload",
                   envelope_schema(k, json_string_value(json_array_get(urns, 0))), "x-urns", urns, "x-kind",
                   ctxd__contract_kind(k), "x-version", ctxd__contract_version(k), "x-status",
                   ctxd__contract_status(k));
}

/* The AMQP channel binding of a fanout exchange as MassTransit declares it. */
static json_t *amqp_binding(const char *exchange) {
  return json_pack("{s:{s:s, s:{s:s, s:s, s:b, s:b, s:s}, s:s}}", "amqp", "is", "routingKey", "exchange",
                   "name", exchange, "type", "fanout", "durable", 1, "autoDelete", 0, "vhost", "/",
                   "bindingVersion", "0.2.0");
}

json_t *ctxd__asyncapi_document(const ctxd__contracts_t *c) {
  json_t *channels = json_object(), *messages = json_object();
  for (size_t i = 0; i < ctxd__contracts_count(c); i++) {
    const ctxd__contract_t *k = ctxd__contracts_at(c, i);
    const char *exchange = ctxd__contract_exchange(k);
    char key[512], ref[600];
    component_key(key, sizeof key, ctxd__contract_type(k));
    snprintf(ref, sizeof ref, "#/components/messages/%s", key);
    json_object_set_new(messages, key, message_of(k));
    json_t *bases = json_array();
    for (size_t b = 0; b < ctxd__contract_nbases(k); b++)
      json_array_append_new(bases, json_string(ctxd__contract_base_exchange(k, b)));
    /* AsyncAPI 2 names operations from the consumer's side: "subscribe" for what ctxd
     * publishes (events), "publish" for what others send to it (commands, replies) */
    const char *op = strcmp(ctxd__contract_kind(k), "event") == 0 ? "subscribe" : "publish";
    json_object_set_new(channels, exchange,
                        json_pack("{s:s, s:o, s:o, s:{s:s, s:{s:s}}}", "description",
                                  "RabbitMQ fanout exchange; bound exchange-to-exchange to each x-bound-to "
                                  "exchange and to the endpoints consuming it",
                                  "bindings", amqp_binding(exchange), "x-bound-to", bases, op, "operationId",
                                  key, "message", "$ref", ref));
  }
  return json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:o, s:{s:o}}", "asyncapi", "2.6.0", "info", "title",
                   "ctxd message contracts", "version", CTXD_VERSION_STRING, "description",
                   "Every contract and version, in MassTransit v8's envelope on RabbitMQ.",
                   "defaultContentType", CTXD__ENVELOPE_CONTENT_TYPE, "channels", channels, "components",
                   "messages", messages);
}

int ctxd__asyncapi_export(const char *path) {
  char err[512];
  ctxd__contracts_t *c = NULL;
  if (ctxd__contracts_new(&c, err, sizeof err) != 0) {
    fprintf(stderr, "ctxd: contracts: %s\n", err);
    return CTXD__EXIT_FAILURE;
  }
  json_t *doc = ctxd__asyncapi_document(c);
  ctxd__contracts_free(c);
  int to_stdout = path == NULL || strcmp(path, "-") == 0;
  int rc = doc == NULL ? -1
           : to_stdout ? json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                       : json_dump_file(doc, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (rc == 0 && to_stdout) rc = fputc('\n', stdout) == EOF ? -1 : 0;
  json_decref(doc);
  if (rc != 0) {
    fprintf(stderr, "ctxd: contracts export: cannot write %s\n", to_stdout ? "to stdout" : path);
    return CTXD__EXIT_FAILURE;
  }
  return CTXD__EXIT_OK;
}
