/* tests-interop receiver (tests-interop/README.md): prints one JSON line per decoded message.
 * Usage: receive <server> <subject> <count> <timeout seconds> [<stream> <durable>]
 * With a stream and a durable: a durable consumer instead, each delivery acknowledged. */
#include <natsbridge.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_string(const char *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void put_base64(const uint8_t *data, size_t len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    putchar('"');
    for (size_t i = 0; i < len; i += 3) {
        uint32_t n = (uint32_t)data[i] << 16;
        if (i + 1 < len) n |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len) n |= data[i + 2];
        putchar(alphabet[(n >> 18) & 63]);
        putchar(alphabet[(n >> 12) & 63]);
        putchar(i + 1 < len ? alphabet[(n >> 6) & 63] : '=');
        putchar(i + 2 < len ? alphabet[n & 63] : '=');
    }
    putchar('"');
}

static const char *HEADER[] = {"correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name",
                               "sender_id", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url"};

static int print_envelope(const natsbridge_envelope *env) {
    const char *v = NULL;
    putchar('{');
    for (size_t i = 0; i < sizeof HEADER / sizeof HEADER[0]; i++) {
        natsbridge_envelope_field(env, HEADER[i], &v);
        printf("\"%s\": ", HEADER[i]);
        put_string(v, strlen(v));
        printf(", ");
    }
    natsbridge_envelope_field(env, "metadata", &v);
    printf("\"metadata\": %s, ", v);
    /* The sender's trace context, a JSON object's text, when the message carried one. */
    natsbridge_envelope_field(env, "trace_headers", &v);
    if (v[0] != '\0') printf("\"trace_headers\": %s, ", v);
    printf("\"payloads\": [");
    size_t count = 0;
    natsbridge_envelope_payload_count(env, &count);
    for (size_t i = 0; i < count; i++) {
        const char *name, *type, *transport;
        const uint8_t *data;
        size_t len;
        natsbridge_envelope_payload(env, i, &name, &type, &transport, &data, &len);
        printf("%s{\"dataname\": ", i ? ", " : "");
        put_string(name, strlen(name));
        printf(", \"payload_type\": \"%s\", \"transport\": \"%s\", \"value\": ", type, transport);
        if (strcmp(type, "text") == 0) {
            put_string((const char *)data, len);
        } else if (strcmp(type, "dictionary") == 0 || strcmp(type, "jsontable") == 0) {
            fwrite(data, 1, len, stdout);
        } else if (strcmp(type, "arrowtable") == 0) {
            char *rows = NULL;
            if (natsbridge_arrow_to_json_rows(data, len, &rows) != NATSBRIDGE_STATUS_OK) return 1;
            printf("{\"rows\": %s}", rows);
            natsbridge_string_free(rows);
        } else {
            printf("{\"base64\": ");
            put_base64(data, len);
            putchar('}');
        }
        putchar('}');
    }
    printf("]}\n");
    fflush(stdout);
    return 0;
}

/* The next message, printed: from the subscription, or a durable delivery (acknowledged once
 * printed). NATSBRIDGE_STATUS_OK, or the status that ended the wait. */
static natsbridge_status next_printed(natsbridge_subscription *sub, natsbridge_consumer *consumer,
                                      unsigned long long timeout_ms) {
    if (sub) {
        natsbridge_envelope *env = NULL;
        natsbridge_status st = natsbridge_subscription_next(sub, timeout_ms, &env);
        if (st != NATSBRIDGE_STATUS_OK) return st;
        if (print_envelope(env) != 0) fprintf(stderr, "error: %s\n", natsbridge_last_error());
        natsbridge_envelope_free(env);
        return st;
    }
    natsbridge_delivery *delivery = NULL;
    const natsbridge_envelope *env = NULL;
    natsbridge_status st = natsbridge_consumer_next(consumer, timeout_ms, &delivery);
    if (st != NATSBRIDGE_STATUS_OK) return st;
    natsbridge_delivery_envelope(delivery, &env);
    if (print_envelope(env) != 0) fprintf(stderr, "error: %s\n", natsbridge_last_error());
    st = natsbridge_delivery_ack(delivery, 5000);
    natsbridge_delivery_free(delivery);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: receive <server> <subject> <count> <timeout seconds> [<stream> <durable>]\n");
        return 2;
    }
    int count = atoi(argv[3]);
    unsigned long long timeout_ms = (unsigned long long)(atof(argv[4]) * 1000);
    natsbridge_client *client = NULL;
    natsbridge_subscription *sub = NULL;
    natsbridge_consumer *consumer = NULL;
    if (natsbridge_client_connect(argv[1], NULL, &client) != NATSBRIDGE_STATUS_OK ||
        (argc == 5 ? natsbridge_client_subscribe(client, argv[2], NULL, &sub)
                   : natsbridge_client_consume(client, argv[5], argv[6], NULL, 10000, &consumer)) !=
            NATSBRIDGE_STATUS_OK) {
        fprintf(stderr, "error: %s\n", natsbridge_last_error());
        return 1;
    }
    fprintf(stderr, "ready: %s %s\n", sub ? "subscribed to" : "consuming", argv[2]);
    fflush(stderr);
    int status = 0;
    for (int i = 0; i < count; i++) {
        natsbridge_status st = next_printed(sub, consumer, timeout_ms);
        if (st == NATSBRIDGE_STATUS_TIMEOUT || st == NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED) {
            fprintf(stderr, "error: %s\n", natsbridge_last_error());
            status = 1;
            break;
        }
        if (st != NATSBRIDGE_STATUS_OK) {
            fprintf(stderr, "error: %s\n", natsbridge_last_error());
            fflush(stderr);
        }
    }
    natsbridge_subscription_free(sub);
    natsbridge_consumer_free(consumer);
    natsbridge_client_free(client);
    return status;
}
