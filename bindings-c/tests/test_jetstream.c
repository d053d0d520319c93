/* JetStream mode (spec/PROTOCOL.md §12) from C, against a real nats-server with JetStream:
 * durable sends and their PubAcks, stream setup, a durable consumer's deliveries and their
 * settlement, dead letters, the link sweep, and NULL safety of every JetStream function.
 * Usage: NATS_URL=nats://... test_jetstream   (scripts/test.sh starts the server)
 * Every run makes streams named after its pid, so the plain, ASan and valgrind runs share the
 * server without seeing each other's messages. */
#define _GNU_SOURCE
#include "check.h"
#include <netdb.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *nats_url;
static char stream[32];      /* CJS<pid>: subjects CJS<pid>.> */
static char dead_stream[48]; /* CJS<pid>_DEAD_LETTER */

static natsbridge_client *connect_with(const char *const *settings) {
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "name", "c-jetstream-tests"));
    for (size_t i = 0; settings && settings[i]; i += 2) REQUIRE_OK(natsbridge_connect_options_set(opts, settings[i], settings[i + 1]));
    REQUIRE_OK(natsbridge_client_connect(nats_url, opts, &client));
    natsbridge_connect_options_free(opts);
    return client;
}

static int bytes_equal(const uint8_t *a, size_t alen, const void *b, size_t blen) {
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* The integer after "key": in JSON text (-1 when absent). */
static long long json_int(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = json ? strstr(json, pattern) : NULL;
    return at ? strtoll(at + strlen(pattern), NULL, 10) : -1;
}

static int contains(const char *text, const char *part) { return text && strstr(text, part) != NULL; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static natsbridge_message *text_message(const char *name, const char *text) {
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, name, "text", (const uint8_t *)text, strlen(text)));
    return msg;
}

/* Publishes raw bytes with no envelope, as any NATS client could: the library only sends
 * envelopes, so this speaks the NATS text protocol on a socket of its own. 0 on success. */
static int raw_publish(const char *subject, const char *data) {
    const char *hostport = strstr(nats_url, "://");
    hostport = hostport ? hostport + 3 : nats_url;
    char host[128], port[16] = "4222";
    snprintf(host, sizeof host, "%s", hostport);
    char *colon = strrchr(host, ':');
    if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = '\0';
    }
    struct addrinfo hints = {0}, *addr = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &addr) != 0) return -1;
    int fd = socket(addr->ai_family, addr->ai_socktype, addr->ai_protocol);
    int ok = fd >= 0 && connect(fd, addr->ai_addr, addr->ai_addrlen) == 0;
    freeaddrinfo(addr);
    char buf[4096];
    size_t have = 0;
    /* INFO first, then CONNECT, the PUB, and a PING whose PONG says the server has the PUB. */
    while (ok && !memchr(buf, '\n', have)) {
        ssize_t n = read(fd, buf + have, sizeof buf - have - 1);
        ok = n > 0;
        have += ok ? (size_t)n : 0;
    }
    char out[512];
    int len = snprintf(out, sizeof out, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB %s %zu\r\n%s\r\nPING\r\n",
                       subject, strlen(data), data);
    ok = ok && len > 0 && (size_t)len < sizeof out && write(fd, out, (size_t)len) == len;
    have = 0;
    buf[0] = '\0';
    while (ok && !strstr(buf, "PONG")) {
        if (have >= sizeof buf - 1) have = 0;
        ssize_t n = read(fd, buf + have, sizeof buf - have - 1);
        have += n > 0 ? (size_t)n : 0;
        buf[have] = '\0';
        ok = n > 0 && !strstr(buf, "-ERR");
    }
    if (fd >= 0) close(fd);
    return ok ? 0 : -1;
}

/* ---- NULL and bad arguments: INVALID_ARGUMENT, never a crash ---- */
static void test_null_safety(void) {
    natsbridge_client *client = connect_with(NULL);
    natsbridge_consumer *consumer = NULL;
    natsbridge_delivery *delivery = NULL;
    const natsbridge_envelope *env = NULL;
    const char *text = NULL;
    char *json = NULL;
    const natsbridge_status bad = NATSBRIDGE_STATUS_INVALID_ARGUMENT;
    CHECK_STATUS(natsbridge_client_add_stream(NULL, "S", NULL, 1000, NULL), bad);
    CHECK_STATUS(natsbridge_client_add_stream(client, NULL, NULL, 1000, &json), bad);
    CHECK_STATUS(natsbridge_client_consume(NULL, "S", "d", NULL, 1000, &consumer), bad);
    CHECK_STATUS(natsbridge_client_consume(client, NULL, "d", NULL, 1000, &consumer), bad);
    CHECK_STATUS(natsbridge_client_consume(client, "S", NULL, NULL, 1000, &consumer), bad);
    CHECK_STATUS(natsbridge_client_consume(client, "S", "d", NULL, 1000, NULL), bad);
    CHECK_STATUS(natsbridge_consumer_next(NULL, 10, &delivery), bad);
    CHECK_STATUS(natsbridge_consumer_next(NULL, 10, NULL), bad);
    CHECK_STATUS(natsbridge_consumer_last_error(NULL, &text), bad);
    CHECK_STATUS(natsbridge_delivery_envelope(NULL, &env), bad);
    CHECK_STATUS(natsbridge_delivery_info_json(NULL, &text), bad);
    CHECK_STATUS(natsbridge_delivery_ack(NULL, 1000), bad);
    CHECK_STATUS(natsbridge_delivery_nak(NULL, 0, 1000), bad);
    CHECK_STATUS(natsbridge_delivery_in_progress(NULL, 1000), bad);
    CHECK_STATUS(natsbridge_delivery_term(NULL, 1000), bad);
    CHECK_STATUS(natsbridge_client_sweep_links(NULL, "S", 1, -1, 1000, &json), bad);
    CHECK_STATUS(natsbridge_client_sweep_links(client, NULL, 1, -1, 1000, &json), bad);
    CHECK(consumer == NULL && delivery == NULL && env == NULL && json == NULL);
    natsbridge_consumer_free(NULL);
    natsbridge_delivery_free(NULL);
    natsbridge_client_free(client);
}

/* ---- the vocabulary: core's stream and consume options, durations in ms ---- */
static int listed(const char *const *names, const char *name) {
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0) return 1;
    return 0;
}

static void same_names(const char *const *names, const char *const *want) {
    size_t n = 0, w = 0;
    for (; names[n]; n++) {
        if (!listed(want, names[n])) {
            checks_failed++;
            fprintf(stderr, "FAIL option %s is not expected\n", names[n]);
        }
    }
    for (; want[w]; w++) CHECK(listed(names, want[w]));
    CHECK(n == w);
}

static void test_vocabulary(void) {
    static const char *const stream_options[] = {"subjects", "storage", "replicas", "max_age_ms", "retention",
                                                 "duplicate_window_ms", "dead_letter", NULL};
    static const char *const consume_options[] = {"ack_wait_ms", "max_deliver", "backoff_ms", "max_ack_pending",
                                                  "double_ack", "nak_delay_ms", "dead_letter_subject",
                                                  "filter_subject", "batch", "deliver_from", NULL};
    same_names(natsbridge_stream_option_names(), stream_options);
    same_names(natsbridge_consume_option_names(), consume_options);
    /* The connection options of JetStream mode. */
    natsbridge_connect_options *opts = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    CHECK_OK(natsbridge_connect_options_set(opts, "jetstream", "true"));
    CHECK_OK(natsbridge_connect_options_set(opts, "jetstream", "false"));
    CHECK_STATUS(natsbridge_connect_options_set(opts, "jetstream", "maybe"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(natsbridge_connect_options_set(opts, "object_store_replicas", "1"));
    CHECK_STATUS(natsbridge_connect_options_set(opts, "object_store_replicas", "many"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    natsbridge_connect_options_free(opts);
}

/* ---- stream setup ---- */
static void test_add_stream(natsbridge_client *client) {
    const natsbridge_status bad = NATSBRIDGE_STATUS_INVALID_ARGUMENT;
    char *json = NULL;
    CHECK_STATUS(natsbridge_client_add_stream(client, stream, "[1]", 5000, &json), bad);
    CHECK_STATUS(natsbridge_client_add_stream(client, stream, "{oops", 5000, &json), bad);
    CHECK_STATUS(natsbridge_client_add_stream(client, stream, "{\"max_age\":1000}", 5000, &json), bad);
    CHECK(contains(natsbridge_last_error(), "\"max_age_ms\""));
    CHECK_STATUS(natsbridge_client_add_stream(client, stream, "{\"bogus\":1}", 5000, &json), bad);
    CHECK(contains(natsbridge_last_error(), "unknown stream option \"bogus\"") &&
          contains(natsbridge_last_error(), "duplicate_window_ms"));
    CHECK_STATUS(natsbridge_client_add_stream(client, stream, "{\"replicas\":0}", 5000, &json), bad);
    CHECK_STATUS(natsbridge_client_add_stream(client, stream, "{\"retention\":\"queue\"}", 5000, &json), bad);
    CHECK_STATUS(natsbridge_client_add_stream(client, "a.b", NULL, 5000, &json), bad);
    /* No message may outlive its links: max_age at most the object store's TTL (1 h). */
    CHECK_STATUS(natsbridge_client_add_stream(client, stream, "{\"max_age_ms\":7200000}", 5000, &json), bad);
    CHECK(json == NULL);

    CHECK_OK(natsbridge_client_add_stream(client, stream,
                                          "{\"storage\":\"memory\",\"max_age_ms\":600000,\"duplicate_window_ms\":60000}",
                                          10000, &json));
    char want[96];
    snprintf(want, sizeof want, "\"name\":\"%s\"", stream);
    CHECK(contains(json, want));
    snprintf(want, sizeof want, "\"subjects\":[\"%s.>\"]", stream);
    CHECK(contains(json, want));
    snprintf(want, sizeof want, "\"dead_letter_stream\":\"%s\"", dead_stream);
    CHECK(contains(json, want));
    CHECK(json_int(json, "max_age_ms") == 600000 && json_int(json, "messages") == 0 && json_int(json, "replicas") == 1);
    natsbridge_string_free(json);
    /* Again: updated to the same settings; the summary is optional. */
    CHECK_OK(natsbridge_client_add_stream(client, stream, "{\"storage\":\"memory\",\"max_age_ms\":600000,\"duplicate_window_ms\":60000}",
                                          10000, NULL));
}

/* ---- durable sends ---- */
static char sent_msg_id[2][64];

static void test_durable_send(natsbridge_client *js, natsbridge_client *plain) {
    char subject[64];
    snprintf(subject, sizeof subject, "%s.orders", stream);
    for (int i = 0; i < 2; i++) {
        char body[16];
        snprintf(body, sizeof body, "order %d", i + 1);
        natsbridge_message *msg = text_message("order", body);
        char *json = NULL;
        CHECK_OK(natsbridge_client_send(js, subject, msg, &json));
        const char *ack = json ? strstr(json, ",\"pub_ack\":{") : NULL;
        CHECK(ack != NULL);
        char want[96];
        snprintf(want, sizeof want, "\"pub_ack\":{\"stream\":\"%s\",", stream);
        CHECK(contains(ack, want));
        CHECK(json_int(ack, "sequence") == i + 1);
        CHECK(contains(ack, "\"duplicate\":false}}"));
        const char *id = json ? strstr(json, "\"msg_id\":\"") : NULL;
        if (id) snprintf(sent_msg_id[i], sizeof sent_msg_id[i], "%.36s", id + strlen("\"msg_id\":\""));
        natsbridge_string_free(json);
        natsbridge_message_free(msg);
    }
    /* A subject no stream captures: INVALID_ARGUMENT, never a silent core-NATS publish. */
    natsbridge_message *msg = text_message("order", "lost?");
    char *json = NULL;
    CHECK_STATUS(natsbridge_client_send(js, "c.nostream.orders", msg, &json), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(contains(natsbridge_last_error(), "no JetStream stream captures subject"));
    CHECK(json == NULL);
    /* Without jetstream a send is core NATS, and its JSON has no pub_ack. */
    CHECK_OK(natsbridge_client_send(plain, "c.nostream.orders", msg, &json));
    CHECK(json && !contains(json, "pub_ack") && json[strlen(json) - 1] == '}');
    natsbridge_string_free(json);
    natsbridge_message_free(msg);
}

/* ---- a durable consumer: deliveries, their info and their settlement ---- */
static void check_info(const natsbridge_delivery *d, long long *sequence, long long *delivered, int *redelivered) {
    const char *info = NULL;
    CHECK_OK(natsbridge_delivery_info_json(d, &info));
    *sequence = json_int(info, "stream_sequence");
    *delivered = json_int(info, "delivered");
    *redelivered = contains(info, "\"redelivered\":true");
    char want[64];
    snprintf(want, sizeof want, "\"stream\":\"%s\"", stream);
    CHECK(contains(info, want) && contains(info, "\"consumer\":\"worker\""));
}

static void check_order(const natsbridge_delivery *d, long long sequence) {
    const natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_delivery_envelope(d, &env));
    if (!env) return;
    const char *v = NULL;
    char want[64];
    snprintf(want, sizeof want, "%s.orders", stream);
    CHECK_OK(natsbridge_envelope_field(env, "subject", &v));
    CHECK(v && strcmp(v, want) == 0);
    CHECK_OK(natsbridge_envelope_field(env, "msg_id", &v));
    CHECK(v && sequence >= 1 && sequence <= 2 && strcmp(v, sent_msg_id[sequence - 1]) == 0);
    CHECK_OK(natsbridge_envelope_field(env, "error", &v));
    CHECK(v && strcmp(v, "") == 0);
    const uint8_t *data = NULL;
    size_t len = 0;
    snprintf(want, sizeof want, "order %lld", sequence);
    CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, NULL, &data, &len));
    CHECK(bytes_equal(data, len, want, strlen(want)));
}

static natsbridge_consumer *test_consume(natsbridge_client *js) {
    const natsbridge_status bad = NATSBRIDGE_STATUS_INVALID_ARGUMENT;
    natsbridge_consumer *consumer = NULL;
    CHECK_STATUS(natsbridge_client_consume(js, "CNOSUCHSTREAM", "worker", NULL, 5000, &consumer), bad);
    CHECK_STATUS(natsbridge_client_consume(js, stream, "a b", NULL, 5000, &consumer), bad);
    CHECK_STATUS(natsbridge_client_consume(js, stream, "worker", "{\"ack_wait\":5}", 5000, &consumer), bad);
    CHECK(contains(natsbridge_last_error(), "\"ack_wait_ms\""));
    CHECK_STATUS(natsbridge_client_consume(js, stream, "worker", "{\"batch\":0}", 5000, &consumer), bad);
    CHECK_STATUS(natsbridge_client_consume(js, stream, "worker", "{\"backoff_ms\":5}", 5000, &consumer), bad);
    /* Redeliveries that could outlast the links (1 h): 1000 deliveries of a 10 s ack wait. */
    CHECK_STATUS(natsbridge_client_consume(js, stream, "worker", "{\"ack_wait_ms\":10000,\"max_deliver\":1000}", 5000, &consumer), bad);
    CHECK(consumer == NULL);

    REQUIRE_OK(natsbridge_client_consume(js, stream, "worker", "{\"ack_wait_ms\":10000,\"nak_delay_ms\":100,\"batch\":10}", 10000, &consumer));
    natsbridge_delivery *first = NULL;
    CHECK_OK(natsbridge_consumer_next(consumer, 10000, &first));
    if (!first) return consumer;
    long long sequence = 0, delivered = 0;
    int redelivered = 1;
    check_info(first, &sequence, &delivered, &redelivered);
    CHECK(sequence == 1 && delivered == 1 && !redelivered);
    check_order(first, 1);
    /* Not processed: nak at once. Settled once only. */
    CHECK_OK(natsbridge_delivery_nak(first, 0, 5000));
    CHECK_STATUS(natsbridge_delivery_nak(first, 0, 5000), bad);
    CHECK_STATUS(natsbridge_delivery_ack(first, 5000), bad);
    CHECK(contains(natsbridge_last_error(), "already settled"));
    CHECK_STATUS(natsbridge_delivery_in_progress(first, 5000), bad);
    CHECK_STATUS(natsbridge_delivery_term(first, 5000), bad);
    natsbridge_delivery_free(first);

    /* Order 2 (first delivery) and order 1 again (delivered 2), in whichever order they come. */
    int seen_second = 0, seen_again = 0;
    for (int i = 0; i < 2; i++) {
        natsbridge_delivery *d = NULL;
        CHECK_OK(natsbridge_consumer_next(consumer, 10000, &d));
        if (!d) break;
        check_info(d, &sequence, &delivered, &redelivered);
        check_order(d, sequence);
        if (sequence == 2 && delivered == 1 && !redelivered) {
            seen_second++;
            CHECK_OK(natsbridge_delivery_in_progress(d, 5000)); /* any number of times before settling */
            CHECK_OK(natsbridge_delivery_in_progress(d, 5000));
            CHECK_OK(natsbridge_delivery_ack(d, 5000));
        } else if (sequence == 1 && delivered == 2 && redelivered) {
            seen_again++;
            CHECK_OK(natsbridge_delivery_ack(d, 5000));
            CHECK_STATUS(natsbridge_delivery_ack(d, 5000), bad);
        } else {
            checks_failed++;
            fprintf(stderr, "FAIL unexpected delivery: sequence %lld, delivered %lld\n", sequence, delivered);
        }
        natsbridge_delivery_free(d);
    }
    CHECK(seen_second == 1 && seen_again == 1);

    /* Nothing left: TIMEOUT, and the consumer keeps the message for other threads. */
    natsbridge_delivery *none = NULL;
    CHECK_STATUS(natsbridge_consumer_next(consumer, 300, &none), NATSBRIDGE_STATUS_TIMEOUT);
    CHECK(none == NULL);
    const char *error = NULL;
    CHECK_OK(natsbridge_consumer_last_error(consumer, &error));
    CHECK(contains(error, "TIMEOUT: no delivery within 300ms"));
    return consumer;
}

/* ---- what can never decode goes to <stream>_DEAD_LETTER, and is not handed out ---- */
static void test_dead_letter(natsbridge_client *js, natsbridge_consumer *consumer) {
    static const char garbage[] = "this is not an envelope";
    char subject[64];
    snprintf(subject, sizeof subject, "%s.garbage", stream);
    CHECK(raw_publish(subject, garbage) == 0);
    natsbridge_delivery *d = NULL;
    CHECK_STATUS(natsbridge_consumer_next(consumer, 2000, &d), NATSBRIDGE_STATUS_TIMEOUT);
    CHECK(d == NULL);
    natsbridge_delivery_free(d);

    natsbridge_consumer *letters = NULL;
    CHECK_OK(natsbridge_client_consume(js, dead_stream, "dead-reader", NULL, 10000, &letters));
    if (!letters) return;
    CHECK_OK(natsbridge_consumer_next(letters, 10000, &d));
    if (d) {
        const natsbridge_envelope *env = NULL;
        const char *v = NULL;
        CHECK_OK(natsbridge_delivery_envelope(d, &env));
        CHECK_OK(natsbridge_envelope_field(env, "msg_purpose", &v));
        CHECK(v && strcmp(v, "NACK") == 0);
        char want[96];
        snprintf(want, sizeof want, "dead-letter-%s-3", stream);
        CHECK_OK(natsbridge_envelope_field(env, "msg_id", &v));
        CHECK(v && strcmp(v, want) == 0);
        CHECK_OK(natsbridge_envelope_field(env, "error", &v));
        CHECK(contains(v, "\"code\":\"INVALID_ENVELOPE\""));
        CHECK(json_int(v, "stream_sequence") == 3 && json_int(v, "delivered") == 1);
        snprintf(want, sizeof want, "\"subject\":\"%s\"", subject);
        CHECK(contains(v, want));
        const char *name = NULL, *type = NULL;
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_OK(natsbridge_envelope_payload(env, 0, &name, &type, NULL, &data, &len));
        CHECK(name && strcmp(name, "original_message") == 0 && type && strcmp(type, "binary") == 0);
        CHECK(bytes_equal(data, len, garbage, strlen(garbage)));
        const char *info = NULL;
        CHECK_OK(natsbridge_delivery_info_json(d, &info));
        snprintf(want, sizeof want, "\"stream\":\"%s\"", dead_stream);
        CHECK(contains(info, want));
        CHECK_OK(natsbridge_delivery_term(d, 5000));
        natsbridge_delivery_free(d);
    }
    natsbridge_consumer_free(letters);
}

/* ---- a next that times out mid-decode goes on with that delivery on the next call ---- */
/* Returns how many link messages it sent to the stream. */
static int test_timeout_keeps_delivery(natsbridge_client *linked, natsbridge_consumer *consumer) {
    size_t len = 3 * 1000 * 1000;
    uint8_t *bytes = malloc(len);
    for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 31 + 7);
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "scan", "binary", bytes, len));
    char subject[64];
    snprintf(subject, sizeof subject, "%s.big", stream);
    /* 1 ms at a time. The first call pulls the message and starts its download, which goes on
     * on the runtime's threads, so whether a call times out before the delivery is ready is the
     * scheduler's choice: with the CPUs saturated none did in 1 run of 5. A message whose
     * delivery came without a timeout has tested nothing, so another is sent, up to 5. Each
     * delivery must be the message sent, delivered once (one dropped half-decoded at a timeout
     * would come back as delivery 2). */
    int timed_out = 0, attempt = 0;
    for (; attempt < 5 && !timed_out; attempt++) {
        char *json = NULL;
        CHECK_OK(natsbridge_client_send(linked, subject, msg, &json));
        CHECK(contains(json, "\"transport\":\"link\"") &&
              json_int(json ? strstr(json, "pub_ack") : NULL, "sequence") == 4 + attempt);
        natsbridge_string_free(json);
        natsbridge_delivery *d = NULL;
        natsbridge_status st = NATSBRIDGE_STATUS_TIMEOUT;
        double deadline = now_s() + 60;
        while (st == NATSBRIDGE_STATUS_TIMEOUT && now_s() < deadline) {
            st = natsbridge_consumer_next(consumer, 1, &d);
            timed_out |= st == NATSBRIDGE_STATUS_TIMEOUT;
        }
        CHECK_STATUS(st, NATSBRIDGE_STATUS_OK);
        if (!d) break;
        long long sequence = 0, delivered = 0;
        int redelivered = 1;
        check_info(d, &sequence, &delivered, &redelivered);
        CHECK(sequence == 4 + attempt && delivered == 1 && !redelivered);
        const natsbridge_envelope *env = NULL;
        const uint8_t *data = NULL;
        size_t got = 0;
        const char *transport = NULL;
        CHECK_OK(natsbridge_delivery_envelope(d, &env));
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "link") == 0 && bytes_equal(data, got, bytes, len));
        CHECK_OK(natsbridge_delivery_ack(d, 5000));
        natsbridge_delivery_free(d);
    }
    CHECK(timed_out);
    natsbridge_message_free(msg);
    free(bytes);
    return attempt;
}

/* ---- the sweep: link objects whose message is not in the stream ---- */
static void test_sweep(natsbridge_client *linked, natsbridge_client *plain_store, int linked_messages) {
    char swept[40], subject[64];
    snprintf(swept, sizeof swept, "%sS", stream);
    snprintf(subject, sizeof subject, "%s.x", swept);
    /* Messages expire after 1.5 s (the duplicate window may not be longer); their links (1 h)
     * stay: orphans. */
    CHECK_OK(natsbridge_client_add_stream(linked, swept, "{\"storage\":\"memory\",\"max_age_ms\":1500,\"duplicate_window_ms\":1000,\"dead_letter\":false}",
                                          10000, NULL));
    natsbridge_message *msg = text_message("note", "kept by link");
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(linked, subject, msg, &json));
    char msg_id[40] = "";
    const char *id = json ? strstr(json, "\"msg_id\":\"") : NULL;
    if (id) snprintf(msg_id, sizeof msg_id, "%.36s", id + strlen("\"msg_id\":\""));
    natsbridge_string_free(json);
    natsbridge_message_free(msg);

    char *report = NULL;
    CHECK_OK(natsbridge_client_sweep_links(linked, swept, 1, 0, 10000, &report));
    CHECK(json_int(report, "checked") == 1 && contains(report, "\"orphans\":[]") && contains(report, "\"dry_run\":true"));
    natsbridge_string_free(report);
    /* The main stream's link objects (the 3 MB messages) have their messages: no orphan, with
     * the default grace period (the duplicate window) too. */
    report = NULL;
    CHECK_OK(natsbridge_client_sweep_links(linked, stream, 1, -1, 10000, &report));
    CHECK(json_int(report, "checked") == linked_messages && contains(report, "\"orphans\":[]"));
    natsbridge_string_free(report);

    double deadline = now_s() + 15;
    int orphaned = 0;
    report = NULL;
    while (!orphaned && now_s() < deadline) {
        usleep(300 * 1000);
        natsbridge_status st = natsbridge_client_sweep_links(linked, swept, 1, 0, 10000, &report);
        orphaned = st == NATSBRIDGE_STATUS_OK && !contains(report, "\"orphans\":[]");
        if (orphaned || st != NATSBRIDGE_STATUS_OK) {
            CHECK_STATUS(st, NATSBRIDGE_STATUS_OK);
            CHECK(contains(report, msg_id) && json_int(report, "age_ms") >= 0 && contains(report, "\"url\":\"nats-obj://"));
            break;
        }
        natsbridge_string_free(report);
        report = NULL;
    }
    natsbridge_string_free(report);
    CHECK(orphaned);
    report = NULL;
    CHECK_OK(natsbridge_client_sweep_links(linked, swept, 0, 0, 10000, &report));
    CHECK(contains(report, "\"dry_run\":false") && contains(report, msg_id));
    natsbridge_string_free(report);
    report = NULL;
    CHECK_OK(natsbridge_client_sweep_links(linked, swept, 1, 0, 10000, &report));
    CHECK(json_int(report, "checked") == 0);
    natsbridge_string_free(report);

    CHECK_STATUS(natsbridge_client_sweep_links(linked, "CNOSUCHSTREAM", 1, -1, 10000, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_sweep_links(plain_store, swept, 1, -1, 10000, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(contains(natsbridge_last_error(), "object store"));
}

int main(void) {
    nats_url = getenv("NATS_URL");
    if (!nats_url) {
        fprintf(stderr, "usage: NATS_URL=nats://... test_jetstream\n");
        return 2;
    }
    snprintf(stream, sizeof stream, "CJS%ld", (long)getpid());
    snprintf(dead_stream, sizeof dead_stream, "%s_DEAD_LETTER", stream);
    test_null_safety();
    test_vocabulary();

    static const char *const durable[] = {"jetstream", "true", NULL};
    static const char *const durable_links[] = {"jetstream", "true", "size_threshold", "0", NULL};
    static const char *const no_store[] = {"object_store", "false", NULL};
    natsbridge_client *js = connect_with(durable);
    natsbridge_client *plain = connect_with(NULL);
    natsbridge_client *linked = connect_with(durable_links);
    natsbridge_client *plain_store = connect_with(no_store);
    test_add_stream(plain);
    test_durable_send(js, plain);
    natsbridge_consumer *consumer = test_consume(js);
    test_dead_letter(js, consumer);
    int linked_messages = test_timeout_keeps_delivery(linked, consumer);
    test_sweep(linked, plain_store, linked_messages);

    natsbridge_consumer_free(consumer);
    CHECK_OK(natsbridge_client_close(js, 5000));
    natsbridge_client_free(js);
    natsbridge_client_free(plain);
    natsbridge_client_free(linked);
    natsbridge_client_free(plain_store);
    return check_summary("test_jetstream");
}
