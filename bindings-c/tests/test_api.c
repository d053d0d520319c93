/* C API tests against a real nats-server (JetStream on, so link payloads go to the object store).
 * Usage: test_api <vector-manifest>   (NATS_URL names the server; scripts/test.sh starts it)
 * The manifest lists "<expected status name>\t<file with raw message bytes>" per line, made from
 * spec/vectors/err-*.json by scripts/vectors.py. */
#define _GNU_SOURCE
#include "check.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *nats_url;

static natsbridge_client *connect_client(const char *threshold) {
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    if (threshold) REQUIRE_OK(natsbridge_connect_options_set(opts, "size_threshold", threshold));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "name", "c-tests"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "sender_name", "c-sender"));
    REQUIRE_OK(natsbridge_client_connect(nats_url, opts, &client));
    natsbridge_connect_options_free(opts);
    return client;
}

static int bytes_equal(const uint8_t *a, size_t alen, const void *b, size_t blen) {
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* ---- argument checking: NULLs and bad values are INVALID_ARGUMENT, never a crash ---- */
static void test_invalid_arguments(void) {
    natsbridge_message *msg = NULL;
    natsbridge_envelope *env = NULL;
    natsbridge_client *client = NULL;
    CHECK_STATUS(natsbridge_message_new(NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(natsbridge_last_error(), "INVALID_ARGUMENT") != NULL);
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK(strcmp(natsbridge_last_error(), "") == 0); /* cleared by a successful call */
    CHECK_STATUS(natsbridge_message_add(NULL, "a", "text", (const uint8_t *)"x", 1), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_add(msg, NULL, "text", (const uint8_t *)"x", 1), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_add(msg, "a", NULL, (const uint8_t *)"x", 1), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_add(msg, "a", "text", NULL, 3), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(natsbridge_message_add(msg, "empty", "text", NULL, 0));
    CHECK_STATUS(natsbridge_message_add(msg, "a\xff", "text", (const uint8_t *)"x", 1), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_set(msg, "no_such_option", "1"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_set(msg, "metadata", "[1]"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_set(msg, "size_threshold", "-5"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_set_upload_handler(msg, NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_connect(nats_url, NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_send(NULL, "s", msg, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_receive(NULL, (const uint8_t *)"{}", 2, &env), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_subscription_next(NULL, 10, &env), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(env == NULL);
    CHECK_STATUS(natsbridge_envelope_field(NULL, "msg_id", NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_buffer_append(NULL, (const uint8_t *)"x", 1), NATSBRIDGE_STATUS_INVALID_ARGUMENT);

    natsbridge_connect_options *opts = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    CHECK_STATUS(natsbridge_connect_options_set(opts, "bogus", "1"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(natsbridge_last_error(), "unknown option \"bogus\"") != NULL);
    CHECK(strstr(natsbridge_last_error(), "connect_timeout_ms") != NULL); /* the list is in C's spelling */
    CHECK_STATUS(natsbridge_connect_options_set(opts, "tls_required", "maybe"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(opts, "connect_timeout_ms", "soon"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(opts, "connect_timeout_ms", "-5"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(opts, "size_threshold", "lots"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(opts, "max_retries", "0"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(opts, "fileserver_kind", "http_put"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    /* A duration only with its _ms suffix; _ms only on a duration. */
    CHECK_STATUS(natsbridge_connect_options_set(opts, "connect_timeout", "500"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(natsbridge_last_error(), "\"connect_timeout_ms\"") != NULL);
    CHECK_STATUS(natsbridge_connect_options_set(opts, "name_ms", "x"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(natsbridge_connect_options_set(opts, "connect_timeout_ms", "1500.5"));
    /* The names before the one vocabulary are refused, naming their successor. */
    static const char *const renamed[][2] = {
        {"require_tls", "tls_required"},
        {"max_reconnects", "max_reconnect_attempts"},
        {"subscription_capacity", "pending_msgs_limit"},
        {"allowed_origin", "allowed_origins"},
        {"handler_url_prefix", "allowed_origins"},
    };
    for (size_t i = 0; i < sizeof renamed / sizeof renamed[0]; i++) {
        CHECK_STATUS(natsbridge_connect_options_set(opts, renamed[i][0], "1"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(natsbridge_last_error(), renamed[i][1]) != NULL);
    }
    CHECK_STATUS(natsbridge_connect_options_set_handlers(opts, NULL, NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(NULL, "name", "x"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(opts, NULL, "x"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_connect_options_set(opts, "name", NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    natsbridge_connect_options_free(opts);

    /* The one-call functions check their arguments too. */
    CHECK_STATUS(natsbridge_smartsend(NULL, msg, NULL, NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_smartsend("s", NULL, NULL, NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_smartreceive(NULL, 3, NULL, NULL, &env), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_smartreceive((const uint8_t *)"{}", 2, NULL, NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_reply_json(NULL, "{}", msg, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);

    /* Every *_free takes NULL. */
    natsbridge_client_free(NULL);
    natsbridge_subscription_free(NULL);
    natsbridge_envelope_free(NULL);
    natsbridge_message_free(NULL);
    natsbridge_connect_options_free(NULL);
    natsbridge_string_free(NULL);
    natsbridge_bytes_free(NULL, 0);
    CHECK(client == NULL);
    CHECK(strcmp(natsbridge_status_name(12345), "UNKNOWN") == 0);
    CHECK(strcmp(natsbridge_status_name(13), "UNKNOWN") == 0);
    CHECK(strcmp(natsbridge_status_name(-1), "UNKNOWN") == 0);
    CHECK(strcmp(natsbridge_version(), "0.1.0") == 0);
    natsbridge_message_free(msg);
}

/* ---- the one vocabulary: C's status names and option keys are core's (README "One vocabulary") ---- */
#define STATUS_NAMED(s) CHECK(strcmp(natsbridge_status_name(NATSBRIDGE_STATUS_##s), #s) == 0)

static int listed(const char *const *names, const char *name) {
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0) return 1;
    return 0;
}

static void test_vocabulary(void) {
    /* Status n is core's code n, under core's name. */
    STATUS_NAMED(OK);
    STATUS_NAMED(INVALID_PAYLOAD_TYPE);
    STATUS_NAMED(UPLOAD_FAILED);
    STATUS_NAMED(DOWNLOAD_FAILED);
    STATUS_NAMED(INVALID_TRANSPORT);
    STATUS_NAMED(NATS_CONNECTION_FAILED);
    STATUS_NAMED(DESERIALIZATION_ERROR);
    STATUS_NAMED(INVALID_ENVELOPE);
    STATUS_NAMED(CHECKSUM_MISMATCH);
    STATUS_NAMED(PAYLOAD_TOO_LARGE);
    STATUS_NAMED(URL_NOT_ALLOWED);
    STATUS_NAMED(TIMEOUT);
    STATUS_NAMED(INVALID_ARGUMENT);
    STATUS_NAMED(INTERNAL_ERROR);
    CHECK(NATSBRIDGE_STATUS_TIMEOUT == 11 && NATSBRIDGE_STATUS_INVALID_ARGUMENT == 12);

    /* The connection options of the README's table, in C's spelling, are exactly the library's. */
    static const char *const vocabulary[] = {
        "servers", "name", "user", "password", "token", "nkey", "credentials_file", "tls_ca_file",
        "tls_cert_file", "tls_key_file", "tls_required", "max_reconnect_attempts", "reconnect_time_wait_ms",
        "connect_timeout_ms", "pending_msgs_limit", "size_threshold", "fileserver_url", "fileserver_kind",
        "object_store", "object_store_bucket", "object_store_ttl_ms", "plik_oneshot", "plik_ttl_ms", "plik_token",
        "s3_endpoint", "s3_region", "s3_profile", "s3_addressing_style", "s3_access_key_id", "s3_secret_access_key",
        "s3_session_token", "s3_presign", "s3_ttl_ms",
        "allowed_origins", "max_retries", "base_delay_ms", "max_delay_ms", "max_download_bytes", "max_payloads",
        "max_message_bytes", "max_json_depth", "max_arrow_columns", "max_arrow_batches", "max_arrow_values", "sender_name",
        "sender_id", "object_store_replicas", "jetstream", NULL,
    };
    const char *const *names = natsbridge_option_names();
    CHECK(names != NULL);
    if (!names) return;
    size_t count = 0;
    for (; names[count]; count++) {
        if (!listed(vocabulary, names[count])) {
            checks_failed++;
            fprintf(stderr, "FAIL option %s is not in the README's vocabulary\n", names[count]);
        }
    }
    for (size_t i = 0; vocabulary[i]; i++) CHECK(listed(names, vocabulary[i]));
    CHECK(count == sizeof vocabulary / sizeof vocabulary[0] - 1);

    /* Every listed key is accepted ("1" is a number, a flag, a duration and a text; the two kinds
     * take one of their words), and a duration's name without its _ms is not. */
    natsbridge_connect_options *opts = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    size_t durations = 0;
    for (size_t i = 0; names[i]; i++) {
        const char *key = names[i];
        const char *value = strcmp(key, "fileserver_kind") == 0       ? "http"
                            : strcmp(key, "s3_addressing_style") == 0 ? "path"
                                                                      : "1";
        natsbridge_status st = natsbridge_connect_options_set(opts, key, value);
        if (st == NATSBRIDGE_STATUS_OK) {
            checks_passed++;
        } else {
            checks_failed++;
            fprintf(stderr, "FAIL option %s: %s\n", key, natsbridge_last_error());
        }
        size_t len = strlen(key);
        if (len > 3 && strcmp(key + len - 3, "_ms") == 0) {
            char base[64];
            snprintf(base, sizeof base, "%.*s", (int)(len - 3), key);
            CHECK_STATUS(natsbridge_connect_options_set(opts, base, "1"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
            durations++;
        }
    }
    CHECK(durations == 7);
    natsbridge_connect_options_free(opts);

    /* The per-message options of the table. */
    static const char *const send_options[] = {"size_threshold", "correlation_id", "msg_purpose", "sender_name",
                                               "sender_id", "receiver_name", "receiver_id", "reply_to",
                                               "reply_to_msg_id"};
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    for (size_t i = 0; i < sizeof send_options / sizeof send_options[0]; i++)
        CHECK_OK(natsbridge_message_set(msg, send_options[i], "1"));
    CHECK_OK(natsbridge_message_set(msg, "metadata", "{\"k\":[1]}"));
    CHECK_STATUS(natsbridge_message_set(msg, "correlation", "1"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_set(msg, "msg_purpose", ""), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    natsbridge_message_free(msg);
}

/* ---- connect failures ---- */
static void test_connect_failure(void) {
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "connect_timeout_ms", "500"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "max_reconnect_attempts", "0"));
    /* Port 1 on loopback: nothing listens there. */
    CHECK_STATUS(natsbridge_client_connect("nats://127.0.0.1:1", opts, &client), NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED);
    CHECK(client == NULL);
    /* A malformed URL and an incomplete option pair are the caller's mistakes. */
    CHECK_STATUS(natsbridge_client_connect("not a url ::", opts, &client), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    REQUIRE_OK(natsbridge_connect_options_set(opts, "user", "alice"));
    CHECK_STATUS(natsbridge_client_connect(nats_url, opts, &client), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(client == NULL);
    natsbridge_connect_options_free(opts);
}

/* ---- every payload type, both transports, one message ---- */
struct sample {
    const char *name, *type;
    const uint8_t *data;
    size_t len;
};

static void round_trip(const char *threshold, const char *want_transport) {
    natsbridge_client *client = connect_client(threshold);
    natsbridge_subscription *sub = NULL;
    char subject[64];
    snprintf(subject, sizeof subject, "c.roundtrip.%s", want_transport);
    REQUIRE_OK(natsbridge_client_subscribe(client, subject, NULL, &sub));

    static const char text[] = "h\xc3\xa9llo \xe2\x9c\x93 world";
    static const char dict[] = "{\"a\":1,\"nested\":{\"b\":[1,2.5,null,\"x\"]},\"t\":true}";
    static const char table[] = "[{\"x\":1,\"y\":\"a\"},{\"x\":2,\"y\":null}]";
    uint8_t *arrow = NULL;
    size_t arrow_len = 0;
    REQUIRE_OK(natsbridge_arrow_from_json_rows((const uint8_t *)table, strlen(table), &arrow, &arrow_len));
    uint8_t bytes[4][300];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 300; i++) bytes[k][i] = (uint8_t)((i * (k + 3) + k) % 256);
    struct sample samples[] = {
        {"greeting", "text", (const uint8_t *)text, strlen(text)},
        {"empty", "text", NULL, 0},
        {"config", "dictionary", (const uint8_t *)dict, strlen(dict)},
        {"rows", "jsontable", (const uint8_t *)table, strlen(table)},
        {"table", "arrowtable", arrow, arrow_len},
        {"photo", "image", bytes[0], 300},
        {"sound", "audio", bytes[1], 300},
        {"clip", "video", bytes[2], 300},
        {"blob", "binary", bytes[3], 300},
    };
    size_t n = sizeof samples / sizeof samples[0];

    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(natsbridge_message_add(msg, samples[i].name, samples[i].type, samples[i].data, samples[i].len));
    CHECK_OK(natsbridge_message_set(msg, "msg_purpose", "event"));
    CHECK_OK(natsbridge_message_set(msg, "correlation_id", "11111111-2222-4333-8444-555555555555"));
    CHECK_OK(natsbridge_message_set(msg, "metadata", "{\"source\":\"c\"}"));
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(client, subject, msg, &json));
    CHECK(json != NULL && strstr(json, "\"msg_purpose\":\"event\"") != NULL);
    if (strcmp(want_transport, "direct") == 0) {
        /* base64 of the text's UTF-8 bytes, inline. */
        CHECK(json != NULL && strstr(json, "\"data\":\"aMOpbGxvIOKckyB3b3JsZA==\"") != NULL);
    } else {
        CHECK(json != NULL && strstr(json, "\"transport\":\"direct\"") == NULL);
        CHECK(json != NULL && strstr(json, "\"sha256\":") != NULL);
    }
    natsbridge_string_free(json);

    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    if (env) {
        const char *v = NULL;
        CHECK_OK(natsbridge_envelope_field(env, "msg_purpose", &v));
        CHECK(v && strcmp(v, "event") == 0);
        CHECK_OK(natsbridge_envelope_field(env, "correlation_id", &v));
        CHECK(v && strcmp(v, "11111111-2222-4333-8444-555555555555") == 0);
        CHECK_OK(natsbridge_envelope_field(env, "send_to", &v));
        CHECK(v && strcmp(v, subject) == 0);
        CHECK_OK(natsbridge_envelope_field(env, "subject", &v));
        CHECK(v && strcmp(v, subject) == 0);
        CHECK_OK(natsbridge_envelope_field(env, "sender_name", &v));
        CHECK(v && strcmp(v, "c-sender") == 0);
        CHECK_OK(natsbridge_envelope_field(env, "metadata", &v));
        CHECK(v && strcmp(v, "{\"source\":\"c\"}") == 0);
        CHECK_OK(natsbridge_envelope_field(env, "timestamp", &v));
        CHECK(v && strlen(v) == 24 && v[23] == 'Z');
        CHECK_STATUS(natsbridge_envelope_field(env, "nope", &v), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
        size_t count = 0;
        CHECK_OK(natsbridge_envelope_payload_count(env, &count));
        CHECK(count == n);
        for (size_t i = 0; i < n && i < count; i++) {
            const char *name = NULL, *type = NULL, *transport = NULL;
            const uint8_t *data = NULL;
            size_t len = 0;
            CHECK_OK(natsbridge_envelope_payload(env, i, &name, &type, &transport, &data, &len));
            CHECK(name && strcmp(name, samples[i].name) == 0);
            CHECK(type && strcmp(type, samples[i].type) == 0);
            CHECK(transport && strcmp(transport, want_transport) == 0);
            CHECK(bytes_equal(data, len, samples[i].data, samples[i].len));
            CHECK(data && data[len] == '\0');
        }
        CHECK_STATUS(natsbridge_envelope_payload(env, n, NULL, NULL, NULL, NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
        /* The Arrow payload reads back as the same rows. */
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_OK(natsbridge_envelope_payload(env, 4, NULL, NULL, NULL, &data, &len));
        char *rows = NULL;
        CHECK_OK(natsbridge_arrow_to_json_rows(data, len, &rows));
        CHECK(rows && strcmp(rows, table) == 0);
        natsbridge_string_free(rows);
        natsbridge_envelope_free(env);
    }
    natsbridge_bytes_free(arrow, arrow_len);
    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
    CHECK_OK(natsbridge_client_close(client, 5000));
    natsbridge_client_free(client);
}

/* ---- bad payloads are refused before anything is published ---- */
static void test_send_errors(void) {
    natsbridge_client *client = connect_client(NULL);
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_STATUS(natsbridge_message_add(msg, "x", "spreadsheet", (const uint8_t *)"1", 1), NATSBRIDGE_STATUS_INVALID_PAYLOAD_TYPE);
    CHECK_STATUS(natsbridge_message_add(msg, "x", "text", (const uint8_t *)"\xff\xfe", 2), NATSBRIDGE_STATUS_INVALID_PAYLOAD_TYPE);
    natsbridge_message_free(msg);

    const struct sample bad[] = {
        {"t", "jsontable", (const uint8_t *)"{\"a\":1}", 7},
        {"d", "dictionary", (const uint8_t *)"{oops", 5},
        {"a", "arrowtable", (const uint8_t *)"not arrow", 9},
    };
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.bad", NULL, &sub));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REQUIRE_OK(natsbridge_message_new(&msg));
        CHECK_OK(natsbridge_message_add(msg, "fine", "text", (const uint8_t *)"ok", 2));
        CHECK_OK(natsbridge_message_add(msg, bad[i].name, bad[i].type, bad[i].data, bad[i].len));
        char *json = NULL;
        CHECK_STATUS(natsbridge_client_send(client, "c.bad", msg, &json), NATSBRIDGE_STATUS_INVALID_PAYLOAD_TYPE);
        CHECK(json == NULL);
        CHECK(strlen(natsbridge_last_error_correlation_id()) == 36);
        natsbridge_message_free(msg);
    }
    natsbridge_envelope *env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(sub, 200, &env), NATSBRIDGE_STATUS_TIMEOUT); /* nothing was published */
    CHECK(env == NULL);

    /* Too large for the server (1 MB max_payload) with no link store at all. */
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *no_store = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "object_store", "false"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "size_threshold", "100000000"));
    REQUIRE_OK(natsbridge_client_connect(nats_url, opts, &no_store));
    natsbridge_connect_options_free(opts);
    size_t big_len = 2 * 1024 * 1024;
    uint8_t *big = calloc(big_len, 1);
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "big", "binary", big, big_len));
    CHECK_STATUS(natsbridge_client_send(no_store, "c.bad", msg, NULL), NATSBRIDGE_STATUS_PAYLOAD_TOO_LARGE);
    natsbridge_message_free(msg);
    free(big);
    natsbridge_client_free(no_store);

    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- decode errors: every err-* golden vector gives its code through the C API ---- */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    *len = fread(buf, 1, (size_t)size, f);
    fclose(f);
    return buf;
}

static void test_vectors(const char *manifest) {
    natsbridge_client *client = connect_client(NULL);
    FILE *f = fopen(manifest, "r");
    CHECK(f != NULL);
    char line[4096];
    int vectors = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        size_t len = 0;
        uint8_t *raw = read_file(tab + 1, &len);
        CHECK(raw != NULL);
        natsbridge_envelope *env = NULL;
        natsbridge_status st = natsbridge_client_receive(client, raw, len, &env);
        if (strcmp(natsbridge_status_name(st), line) == 0) {
            checks_passed++;
        } else {
            checks_failed++;
            fprintf(stderr, "FAIL vector %s: got %s, expected %s (%s)\n", tab + 1, natsbridge_status_name(st), line,
                    natsbridge_last_error());
        }
        natsbridge_envelope_free(env);
        free(raw);
        vectors++;
    }
    if (f) fclose(f);
    CHECK(vectors >= 30);

    /* A link to an origin nobody allowed: refused without a request. */
    const char *foreign = "{\"payloads\":[{\"dataname\":\"d\",\"payload_type\":\"binary\",\"transport\":\"link\","
                          "\"size\":3,\"data\":\"http://203.0.113.7/file/x/y/d.bin\"}]}";
    natsbridge_envelope *env = NULL;
    CHECK_STATUS(natsbridge_client_receive(client, (const uint8_t *)foreign, strlen(foreign), &env), NATSBRIDGE_STATUS_URL_NOT_ALLOWED);
    CHECK(env == NULL);
    natsbridge_client_free(client);
}

/* ---- request / reply, NACK, timeouts ---- */
struct responder {
    natsbridge_client *client;
    natsbridge_subscription *sub;
    int handled;
    natsbridge_status bad_codes[2]; /* reply_error with codes 0 and 13 */
};

/* The request as a host language holds it (Julia's Dict): its header fields as JSON. */
static void request_json(const natsbridge_envelope *req, char *out, size_t size) {
    const char *cid = "", *msg_id = "", *reply = "";
    natsbridge_envelope_field(req, "correlation_id", &cid);
    natsbridge_envelope_field(req, "msg_id", &msg_id);
    natsbridge_envelope_field(req, "reply", &reply);
    snprintf(out, size, "{\"correlation_id\":\"%s\",\"msg_id\":\"%s\",\"reply\":\"%s\",\"payloads\":[1]}", cid, msg_id,
             reply);
}

static void *respond(void *arg) {
    struct responder *r = arg;
    for (int i = 0; i < 4; i++) {
        natsbridge_envelope *req = NULL;
        if (natsbridge_subscription_next(r->sub, 5000, &req) != NATSBRIDGE_STATUS_OK) break;
        const uint8_t *data = NULL;
        size_t len = 0;
        char json[512];
        request_json(req, json, sizeof json);
        natsbridge_envelope_payload(req, 0, NULL, NULL, NULL, &data, &len);
        natsbridge_message *msg = NULL;
        natsbridge_message_new(&msg);
        natsbridge_message_add(msg, "answer", "text", data, len); /* echo */
        natsbridge_message_add(msg, "extra", "dictionary", (const uint8_t *)"{\"n\":42}", 8);
        if (len == 4 && memcmp(data, "fail", 4) == 0) {
            r->bad_codes[0] = natsbridge_client_reply_error(r->client, req, 0, "no code", NULL);
            r->bad_codes[1] = natsbridge_client_reply_error(r->client, req, 13, "no code", NULL);
            natsbridge_client_reply_error(r->client, req, NATSBRIDGE_STATUS_DOWNLOAD_FAILED, "the responder says no", NULL);
        } else if (len == 4 && memcmp(data, "nack", 4) == 0) {
            natsbridge_client_reply_error_json(r->client, json, NATSBRIDGE_STATUS_INVALID_ARGUMENT, "bad question", NULL);
        } else if (len == 4 && memcmp(data, "json", 4) == 0) {
            natsbridge_client_reply_json(r->client, json, msg, NULL);
        } else {
            natsbridge_client_reply(r->client, req, msg, NULL);
        }
        natsbridge_message_free(msg);
        natsbridge_envelope_free(req);
        r->handled++;
    }
    return NULL;
}

/* One request; the reply's answer payload must echo `question`. */
static void ask(natsbridge_client *client, const char *question) {
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "question", "text", (const uint8_t *)question, strlen(question)));
    CHECK_OK(natsbridge_message_set(msg, "sender_name", "asker"));
    natsbridge_envelope *reply = NULL;
    CHECK_OK(natsbridge_client_request(client, "c.service", msg, 5000, &reply));
    if (reply) {
        const char *purpose = NULL, *name = NULL, *receiver = NULL;
        const uint8_t *data = NULL;
        size_t len = 0, count = 0;
        CHECK_OK(natsbridge_envelope_field(reply, "msg_purpose", &purpose));
        CHECK(purpose && strcmp(purpose, "ACK") == 0);
        CHECK_OK(natsbridge_envelope_field(reply, "receiver_name", &receiver));
        /* reply() names the request's sender; the JSON form carried no sender_name. */
        CHECK(receiver && strcmp(receiver, strcmp(question, "json") == 0 ? "" : "asker") == 0);
        CHECK_OK(natsbridge_envelope_payload_count(reply, &count));
        CHECK(count == 2);
        CHECK_OK(natsbridge_envelope_payload(reply, 0, &name, NULL, NULL, &data, &len));
        CHECK(name && strcmp(name, "answer") == 0 && bytes_equal(data, len, question, strlen(question)));
        CHECK_OK(natsbridge_envelope_payload(reply, 1, NULL, NULL, NULL, &data, &len));
        CHECK(bytes_equal(data, len, "{\"n\":42}", 8));
        natsbridge_envelope_free(reply);
    }
    natsbridge_message_free(msg);
}

static void test_request_reply(void) {
    natsbridge_client *client = connect_client(NULL);
    struct responder r = {client, NULL, 0, {NATSBRIDGE_STATUS_OK, NATSBRIDGE_STATUS_OK}};
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.service", NULL, &r.sub));
    pthread_t thread;
    pthread_create(&thread, NULL, respond, &r);

    ask(client, "ping");
    ask(client, "json");
    natsbridge_message *msg = NULL;
    natsbridge_envelope *reply = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "question", "text", (const uint8_t *)"fail", 4));
    CHECK_STATUS(natsbridge_client_request(client, "c.service", msg, 5000, &reply), NATSBRIDGE_STATUS_DOWNLOAD_FAILED);
    CHECK(strstr(natsbridge_last_error(), "the responder says no") != NULL);
    CHECK(reply == NULL);
    natsbridge_message_free(msg);
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "question", "text", (const uint8_t *)"nack", 4));
    CHECK_STATUS(natsbridge_client_request(client, "c.service", msg, 5000, &reply), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(natsbridge_last_error(), "bad question") != NULL);
    pthread_join(thread, NULL);
    CHECK(r.handled == 4);
    CHECK(r.bad_codes[0] == NATSBRIDGE_STATUS_INVALID_ARGUMENT && r.bad_codes[1] == NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    /* A request as JSON must be an object with a correlation id. */
    CHECK_STATUS(natsbridge_client_reply_json(client, "[1]", msg, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_reply_json(client, "{not json", msg, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_reply_error_json(client, "{\"msg_id\":\"m\"}", 11, "x", NULL),
                 NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    /* ...and with no address to reply to, INVALID_ENVELOPE. */
    CHECK_STATUS(natsbridge_client_reply_json(client, "{\"correlation_id\":\"c\"}", msg, NULL), NATSBRIDGE_STATUS_INVALID_ENVELOPE);

    /* Nobody listens: TIMEOUT (no responders), and an idle subscription times out. */
    CHECK_STATUS(natsbridge_client_request(client, "c.nobody", msg, 2000, &reply), NATSBRIDGE_STATUS_TIMEOUT);
    natsbridge_envelope *env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(r.sub, 50, &env), NATSBRIDGE_STATUS_TIMEOUT);
    /* The subscription keeps its last failure for callers that wait on another thread. */
    const char *sub_error = NULL;
    CHECK_OK(natsbridge_subscription_last_error(r.sub, &sub_error));
    CHECK(sub_error && strstr(sub_error, "TIMEOUT: no message within") != NULL);
    natsbridge_message_free(msg);
    natsbridge_subscription_free(r.sub);
    natsbridge_client_free(client);
}

/* ---- trace context (spec/PROTOCOL.md §13): sent as headers, read back as trace_headers ---- */
static void test_trace_headers(void) {
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.trace", NULL, &sub));
    const char *given = "{\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\","
                        "\"tracestate\":\"congo=t61rcWkgMzE\"}";
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "n", "text", (const uint8_t *)"x", 1));
    CHECK_STATUS(natsbridge_message_set(msg, "trace_headers", "{\"traceparent\":\"00-zz\"}"),
                 NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(natsbridge_last_error(), "traceparent") != NULL);
    CHECK_OK(natsbridge_message_set(msg, "trace_headers", given));
    CHECK_OK(natsbridge_client_send(client, "c.trace", msg, NULL));
    natsbridge_message_free(msg);
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "n", "text", (const uint8_t *)"y", 1));
    CHECK_OK(natsbridge_client_send(client, "c.trace", msg, NULL));
    natsbridge_message_free(msg);

    natsbridge_envelope *env = NULL;
    const char *headers = NULL;
    REQUIRE_OK(natsbridge_subscription_next(sub, 5000, &env));
    CHECK_OK(natsbridge_envelope_field(env, "trace_headers", &headers));
    CHECK(headers && strcmp(headers, given) == 0);
    natsbridge_envelope_free(env);
    REQUIRE_OK(natsbridge_subscription_next(sub, 5000, &env));
    CHECK_OK(natsbridge_envelope_field(env, "trace_headers", &headers));
    CHECK(headers && strcmp(headers, "") == 0);
    natsbridge_envelope_free(env);

    /* What the client counted (spec/PROTOCOL.md §13.3): two sends (the refused one is not), two receipts. */
    char *json = NULL;
    CHECK_OK(natsbridge_client_metrics(client, &json));
    CHECK(json && strstr(json, "\"messages_sent\":2,\"messages_received\":2,") != NULL);
    CHECK(json && strstr(json, "\"payloads_sent\":{\"direct\":2,\"link\":0}") != NULL);
    natsbridge_string_free(json);
    CHECK_STATUS(natsbridge_client_metrics(NULL, &json), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_client_metrics(client, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- one client, several sending threads ---- */
#define SENDERS 6
#define PER_SENDER 40

struct sender {
    natsbridge_client *client;
    int index;
    int failures;
};

static void *send_many(void *arg) {
    struct sender *s = arg;
    for (int i = 0; i < PER_SENDER; i++) {
        natsbridge_message *msg = NULL;
        char body[32];
        int n = snprintf(body, sizeof body, "%d:%d", s->index, i);
        if (natsbridge_message_new(&msg) != NATSBRIDGE_STATUS_OK ||
            natsbridge_message_add(msg, "n", "text", (const uint8_t *)body, (size_t)n) != NATSBRIDGE_STATUS_OK ||
            natsbridge_client_send(s->client, "c.threads", msg, NULL) != NATSBRIDGE_STATUS_OK)
            s->failures++;
        natsbridge_message_free(msg);
    }
    return NULL;
}

static void test_threads(void) {
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.threads", NULL, &sub));
    /* The last error is per thread: the senders' successful calls do not clear this one. */
    CHECK_STATUS(natsbridge_message_new(NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    pthread_t threads[SENDERS];
    struct sender senders[SENDERS];
    for (int t = 0; t < SENDERS; t++) {
        senders[t] = (struct sender){client, t, 0};
        pthread_create(&threads[t], NULL, send_many, &senders[t]);
    }
    for (int t = 0; t < SENDERS; t++) pthread_join(threads[t], NULL);
    CHECK(strstr(natsbridge_last_error(), "out is NULL") != NULL || strstr(natsbridge_last_error(), "out (the out-param) is NULL") != NULL);
    int seen[SENDERS][PER_SENDER] = {{0}};
    int received = 0, in_order = 1, last[SENDERS];
    for (int t = 0; t < SENDERS; t++) {
        CHECK(senders[t].failures == 0);
        last[t] = -1;
    }
    while (received < SENDERS * PER_SENDER) {
        natsbridge_envelope *env = NULL;
        if (natsbridge_subscription_next(sub, 5000, &env) != NATSBRIDGE_STATUS_OK) break;
        const uint8_t *data = NULL;
        int t = -1, i = -1;
        natsbridge_envelope_payload(env, 0, NULL, NULL, NULL, &data, NULL);
        if (data && sscanf((const char *)data, "%d:%d", &t, &i) == 2 && t >= 0 && t < SENDERS && i >= 0 && i < PER_SENDER) {
            seen[t][i]++;
            if (i <= last[t]) in_order = 0; /* one thread's sends keep their order */
            last[t] = i;
        }
        natsbridge_envelope_free(env);
        received++;
    }
    CHECK(received == SENDERS * PER_SENDER);
    int exactly_once = 1;
    for (int t = 0; t < SENDERS; t++)
        for (int i = 0; i < PER_SENDER; i++) exactly_once &= seen[t][i] == 1;
    CHECK(exactly_once);
    CHECK(in_order);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- link payloads through Plik (fileserver_url), the seeds' file server ---- */
static void test_plik(void) {
    const char *plik = getenv("PLIK_URL");
    CHECK(plik != NULL); /* scripts/test.sh starts a real plikd */
    if (!plik) return;
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "fileserver_url", plik));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "object_store", "false"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "size_threshold", "1000"));
    REQUIRE_OK(natsbridge_client_connect(nats_url, opts, &client));
    natsbridge_connect_options_free(opts);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.plik", NULL, &sub));
    size_t len = 300000;
    uint8_t *bytes = malloc(len);
    for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 13 + 5);
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "scan.bin", "binary", bytes, len));
    CHECK_OK(natsbridge_message_add(msg, "note", "text", (const uint8_t *)"small", 5));
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.plik", msg, &json));
    char prefix[256];
    snprintf(prefix, sizeof prefix, "\"data\":\"%s/file/", plik);
    CHECK(json && strstr(json, prefix) != NULL);
    natsbridge_string_free(json);
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 10000, &env));
    if (env) {
        const char *transport = NULL;
        const uint8_t *data = NULL;
        size_t got = 0;
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "link") == 0);
        CHECK(bytes_equal(data, got, bytes, len));
        CHECK_OK(natsbridge_envelope_payload(env, 1, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "direct") == 0 && bytes_equal(data, got, "small", 5));
        natsbridge_envelope_free(env);
    }
    free(bytes);
    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- a payload from a file: streamed to the store while it is read, exact at the receiver ---- */
static void test_add_file(void) {
    size_t len = 2000000;
    uint8_t *bytes = malloc(len);
    for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 29 + 3);
    char path[] = "/tmp/natsbridge-c-file-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, bytes, len) != (ssize_t)len) {
        perror("test_add_file: writing the file");
        exit(2);
    }
    close(fd);
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.file", NULL, &sub));
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add_file(msg, "scan.bin", "binary", path));
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.file", msg, &json));
    CHECK(json && strstr(json, "\"size\":2000000") != NULL && strstr(json, "\"transport\":\"link\"") != NULL);
    natsbridge_string_free(json);
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 10000, &env));
    if (env) {
        const char *transport = NULL;
        const uint8_t *data = NULL;
        size_t got = 0;
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "link") == 0 && bytes_equal(data, got, bytes, len));
        natsbridge_envelope_free(env);
    }
    natsbridge_message_free(msg);

    /* Bad files and types are refused when added, before anything is sent. */
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_STATUS(natsbridge_message_add_file(msg, "x", "binary", "/nonexistent/natsbridge.bin"),
                 NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_add_file(msg, "x", "binary", "/tmp"), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_add_file(msg, "x", "binary", NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_add_file(msg, "x", "text", path), NATSBRIDGE_STATUS_INVALID_PAYLOAD_TYPE);
    CHECK_STATUS(natsbridge_message_add_file(NULL, "x", "binary", path), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    natsbridge_message_free(msg);
    unlink(path);
    free(bytes);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- a payload from a read callback: read on the library's thread as it is uploaded ---- */
struct memory_reader {
    const uint8_t *bytes;
    size_t len, at, calls;
    size_t largest_ask; /* the largest capacity asked for */
    int fail;           /* return -1 on the first call */
};

static int64_t read_memory(void *user_data, uint8_t *buf, size_t capacity) {
    struct memory_reader *r = user_data;
    r->calls++;
    if (capacity > r->largest_ask) r->largest_ask = capacity;
    if (r->fail) return -1;
    size_t n = r->len - r->at < 100000 ? r->len - r->at : 100000; /* short reads */
    if (n > capacity) n = capacity;
    memcpy(buf, r->bytes + r->at, n);
    r->at += n;
    return (int64_t)n;
}

static void test_add_reader(void) {
    size_t len = 2000000;
    uint8_t *bytes = malloc(len);
    for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 31 + 7);
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.reader", NULL, &sub));
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    struct memory_reader big = {bytes, len, 0, 0, 0, 0};
    struct memory_reader small = {(const uint8_t *)"tiny", 4, 0, 0, 0, 0};
    CHECK_OK(natsbridge_message_add_reader(msg, "scan.bin", "binary", len, read_memory, &big));
    CHECK_OK(natsbridge_message_add_reader(msg, "tiny.bin", "binary", 4, read_memory, &small));
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.reader", msg, &json));
    CHECK(json && strstr(json, "\"size\":2000000") != NULL && strstr(json, "\"transport\":\"link\"") != NULL);
    natsbridge_string_free(json);
    /* Read to its end in short reads, then one 0; never asked for more than a chunk. */
    CHECK(big.at == len && big.calls == len / 100000 + 1 && big.largest_ask <= 256 * 1024);
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 10000, &env));
    if (env) {
        const char *transport = NULL;
        const uint8_t *data = NULL;
        size_t got = 0;
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "link") == 0 && bytes_equal(data, got, bytes, len));
        CHECK_OK(natsbridge_envelope_payload(env, 1, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "direct") == 0 && bytes_equal(data, got, "tiny", 4));
        natsbridge_envelope_free(env);
    }
    /* A reader is read once: sending the message again fails, and publishes nothing. */
    CHECK_STATUS(natsbridge_client_send(client, "c.reader", msg, &json), NATSBRIDGE_STATUS_UPLOAD_FAILED);
    natsbridge_message_free(msg);

    /* Fewer bytes than the size, or a failing read: UPLOAD_FAILED, nothing published. */
    struct memory_reader short_reader = {bytes, len - 1, 0, 0, 0, 0};
    struct memory_reader failing = {bytes, len, 0, 0, 0, 1};
    struct memory_reader *bad[] = {&short_reader, &failing};
    for (size_t i = 0; i < 2; i++) {
        REQUIRE_OK(natsbridge_message_new(&msg));
        CHECK_OK(natsbridge_message_add_reader(msg, "scan.bin", "binary", len, read_memory, bad[i]));
        CHECK_STATUS(natsbridge_client_send(client, "c.reader", msg, &json), NATSBRIDGE_STATUS_UPLOAD_FAILED);
        CHECK(strstr(natsbridge_last_error(), i == 0 ? "fewer bytes" : "returned -1") != NULL);
        natsbridge_message_free(msg);
    }
    CHECK_STATUS(natsbridge_subscription_next(sub, 300, &env), NATSBRIDGE_STATUS_TIMEOUT);

    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_STATUS(natsbridge_message_add_reader(msg, "x", "binary", 4, NULL, &small), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_message_add_reader(msg, "x", "text", 4, read_memory, &small),
                 NATSBRIDGE_STATUS_INVALID_PAYLOAD_TYPE);
    CHECK_STATUS(natsbridge_message_add_reader(NULL, "x", "binary", 4, read_memory, &small),
                 NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    natsbridge_message_free(msg);
    free(bytes);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- the library's own spans, exported as JSON batches (run last: they stay on) ---- */
static pthread_mutex_t spans_lock = PTHREAD_MUTEX_INITIALIZER;
static char spans_seen[65536];
static int span_batches;

static void collect_spans(void *user_data, const char *json) {
    pthread_mutex_lock(&spans_lock);
    span_batches += user_data == &span_batches;
    strncat(spans_seen, json, sizeof spans_seen - strlen(spans_seen) - 1);
    pthread_mutex_unlock(&spans_lock);
}

static int spans_contain(const char *text) {
    pthread_mutex_lock(&spans_lock);
    int found = strstr(spans_seen, text) != NULL;
    pthread_mutex_unlock(&spans_lock);
    return found;
}

static void test_export_spans(void) {
    CHECK_STATUS(natsbridge_export_spans(NULL, NULL), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(natsbridge_export_spans(collect_spans, &span_batches));
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.spans", NULL, &sub));
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "n", "text", (const uint8_t *)"x", 1));
    CHECK_OK(natsbridge_message_set(msg, "trace_headers",
                                    "{\"traceparent\":\"00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}"));
    CHECK_OK(natsbridge_client_send(client, "c.spans", msg, NULL));
    natsbridge_message_free(msg);
    natsbridge_envelope *env = NULL;
    const char *headers = NULL;
    REQUIRE_OK(natsbridge_subscription_next(sub, 5000, &env));
    CHECK_OK(natsbridge_envelope_field(env, "trace_headers", &headers));
    /* The message now names the library's publish span, in the caller's trace. */
    CHECK(headers && strstr(headers, "00-1af7651916cd43dd8448eb211c80319c-") != NULL &&
          strstr(headers, "b7ad6b7169203331") == NULL);
    for (int i = 0; i < 1000 && !spans_contain("\"name\":\"receive c.spans\""); i++) usleep(10000);
    CHECK(spans_contain("\"name\":\"send c.spans\"") && spans_contain("\"name\":\"publish c.spans\"") &&
          spans_contain("\"name\":\"receive c.spans\""));
    CHECK(spans_contain("\"parent_span_id\":\"b7ad6b7169203331\""));
    CHECK(spans_contain("\"trace_id\":\"1af7651916cd43dd8448eb211c80319c\""));
    pthread_mutex_lock(&spans_lock);
    CHECK(span_batches > 0 && spans_seen[0] == '[');
    pthread_mutex_unlock(&spans_lock);
    natsbridge_envelope_free(env);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- a link payload received as a stream: read in chunks or saved, never whole in memory ---- */
static void test_streamed_link(void) {
    size_t len = 2000000;
    uint8_t *bytes = malloc(len);
    for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 17 + 1);
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.streamed", NULL, &sub));
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "scan.bin", "binary", bytes, len));
    CHECK_OK(natsbridge_message_add(msg, "note", "text", (const uint8_t *)"small", 5));
    for (int round = 0; round < 2; round++) CHECK_OK(natsbridge_client_send(client, "c.streamed", msg, NULL));

    /* First copy: read in chunks of 100,000 bytes. */
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next_streamed(sub, 10000, &env));
    if (env) {
        const char *transport = NULL;
        const uint8_t *data = NULL;
        size_t got = 99;
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "link") == 0 && got == 0);
        CHECK_OK(natsbridge_envelope_payload(env, 1, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "direct") == 0 && bytes_equal(data, got, "small", 5));
        natsbridge_link *link = NULL;
        CHECK_STATUS(natsbridge_envelope_take_link(env, 1, &link), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
        CHECK_OK(natsbridge_envelope_take_link(env, 0, &link));
        CHECK_STATUS(natsbridge_envelope_take_link(env, 0, &link), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
        uint8_t *read = malloc(len + 1);
        size_t total = 0, n = 0;
        uint8_t chunk[100000];
        const char *sha256 = "unset";
        CHECK_OK(natsbridge_link_sha256(link, &sha256));
        CHECK(sha256 == NULL);
        for (int reads = 0; reads < 1000; reads++) {
            if (natsbridge_link_read(link, chunk, sizeof chunk, &n) != NATSBRIDGE_STATUS_OK || n == 0) break;
            CHECK(n <= sizeof chunk);
            if (total + n <= len + 1) memcpy(read + total, chunk, n);
            total += n;
        }
        CHECK(n == 0 && bytes_equal(read, total, bytes, len));
        CHECK_OK(natsbridge_link_sha256(link, &sha256));
        CHECK(sha256 != NULL && strlen(sha256) == 64);
        CHECK_STATUS(natsbridge_link_read(link, NULL, 10, &n), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
        free(read);
        natsbridge_link_free(link);
        natsbridge_envelope_free(env);
    }

    /* Second copy: saved to a file. */
    env = NULL;
    CHECK_OK(natsbridge_subscription_next_streamed(sub, 10000, &env));
    if (env) {
        natsbridge_link *link = NULL;
        CHECK_OK(natsbridge_envelope_take_link(env, 0, &link));
        char path[] = "/tmp/natsbridge-c-streamed-XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0) close(fd);
        uint64_t written = 0;
        CHECK_OK(natsbridge_link_save(link, path, &written));
        CHECK(written == len);
        size_t saved_len = 0;
        uint8_t *saved = read_file(path, &saved_len);
        CHECK(saved && bytes_equal(saved, saved_len, bytes, len));
        free(saved);
        unlink(path);
        natsbridge_link_free(link);
        natsbridge_envelope_free(env);
    }

    /* A message received whole has no link to take. */
    CHECK_OK(natsbridge_client_send(client, "c.streamed", msg, NULL));
    env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 10000, &env));
    natsbridge_link *none = NULL;
    CHECK_STATUS(natsbridge_envelope_take_link(env, 0, &none), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(natsbridge_envelope_take_link(NULL, 0, &none), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    natsbridge_link_free(NULL);
    natsbridge_envelope_free(env);
    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
    free(bytes);
}

/* ---- link payloads through an S3-compatible server (s3s-fs), with credentials or presigned ---- */
/* A client whose links go to s3://<bucket>/c on the test server; NULL secret: the right one. */
static natsbridge_client *s3_client(const char *secret, const char *presign_ttl_ms) {
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    char url[256];
    snprintf(url, sizeof url, "s3://%s/c", getenv("S3_BUCKET"));
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "fileserver_url", url));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "object_store", "false"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "size_threshold", "1000"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "s3_endpoint", getenv("S3_ENDPOINT")));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "s3_access_key_id", getenv("S3_ACCESS_KEY_ID")));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "s3_secret_access_key",
                                              secret ? secret : getenv("S3_SECRET_ACCESS_KEY")));
    if (presign_ttl_ms) {
        REQUIRE_OK(natsbridge_connect_options_set(opts, "s3_presign", "true"));
        REQUIRE_OK(natsbridge_connect_options_set(opts, "s3_ttl_ms", presign_ttl_ms));
    }
    REQUIRE_OK(natsbridge_client_connect(nats_url, opts, &client));
    natsbridge_connect_options_free(opts);
    return client;
}

/* Sends `bytes` from `sender` on `subject` and checks `receiver` gets them by a link that
 * starts with `link_prefix`. */
static void s3_round_trip(natsbridge_client *sender, natsbridge_client *receiver, const char *subject,
                          const char *link_prefix, const uint8_t *bytes, size_t len) {
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(receiver, subject, NULL, &sub));
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "scan.bin", "binary", bytes, len));
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(sender, subject, msg, &json));
    char prefix[512];
    snprintf(prefix, sizeof prefix, "\"data\":\"%s", link_prefix);
    CHECK(json && strstr(json, prefix) != NULL);
    natsbridge_string_free(json);
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 20000, &env));
    if (env) {
        const char *transport = NULL;
        const uint8_t *data = NULL;
        size_t got = 0;
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, &data, &got));
        CHECK(transport && strcmp(transport, "link") == 0);
        CHECK(bytes_equal(data, got, bytes, len));
        natsbridge_envelope_free(env);
    }
    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
}

static void test_s3(void) {
    const char *endpoint = getenv("S3_ENDPOINT"), *bucket = getenv("S3_BUCKET");
    CHECK(endpoint != NULL && bucket != NULL); /* scripts/test.sh starts a real s3s-fs */
    if (!endpoint || !bucket) return;
    /* Over the server's max_payload: a link with no fallback to direct. */
    size_t len = 1100000;
    uint8_t *bytes = malloc(len);
    for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 31 + 7);
    char prefix[256];

    /* With credentials: an s3:// link, fetched by a receiver with the same store. */
    natsbridge_client *sender = s3_client(NULL, NULL), *receiver = s3_client(NULL, NULL);
    snprintf(prefix, sizeof prefix, "s3://%s/c/", bucket);
    s3_round_trip(sender, receiver, "c.s3", prefix, bytes, len);

    /* A client without the store refuses the link before fetching anything. */
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "scan.bin", "binary", bytes, len));
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(sender, "c.s3.stranger", msg, &json));
    natsbridge_client *stranger = connect_client(NULL);
    natsbridge_envelope *env = NULL;
    if (json)
        CHECK_STATUS(natsbridge_client_receive(stranger, (const uint8_t *)json, strlen(json), &env),
                     NATSBRIDGE_STATUS_URL_NOT_ALLOWED);
    CHECK(env == NULL);
    natsbridge_string_free(json);
    natsbridge_client_free(stranger);

    /* Presigned: a plain HTTP link a receiver without credentials fetches through an allowed origin. */
    natsbridge_client *presigner = s3_client(NULL, "600000");
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *plain = NULL;
    char origin[256];
    snprintf(origin, sizeof origin, "%s/%s/c", endpoint, bucket);
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "object_store", "false"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "allowed_origins", origin));
    REQUIRE_OK(natsbridge_client_connect(nats_url, opts, &plain));
    natsbridge_connect_options_free(opts);
    snprintf(prefix, sizeof prefix, "%s/%s/c/", endpoint, bucket);
    s3_round_trip(presigner, plain, "c.s3.presigned", prefix, bytes, len);
    natsbridge_client_free(plain);
    natsbridge_client_free(presigner);

    /* A wrong secret: UPLOAD_FAILED, and nothing is published. */
    natsbridge_client *intruder = s3_client("not-the-secret", NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(receiver, "c.s3.wrong", NULL, &sub));
    CHECK_STATUS(natsbridge_client_send(intruder, "c.s3.wrong", msg, NULL), NATSBRIDGE_STATUS_UPLOAD_FAILED);
    env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(sub, 500, &env), NATSBRIDGE_STATUS_TIMEOUT);
    CHECK(env == NULL);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(intruder);

    natsbridge_message_free(msg);
    natsbridge_client_free(receiver);
    natsbridge_client_free(sender);
    free(bytes);
}

/* ---- receive limits (spec/PROTOCOL.md 9.4): connection options, on every receive path ---- */
static natsbridge_message *texts(int n) {
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        CHECK_OK(natsbridge_message_add(msg, name, "text", (const uint8_t *)"x", 1));
    }
    return msg;
}

static void test_receive_limits(void) {
    natsbridge_client *plain = connect_client(NULL);
    natsbridge_message *three = texts(3), *two = texts(2), *deep = NULL;
    REQUIRE_OK(natsbridge_message_new(&deep));
    static const char deep_json[] = "{\"a\":[[[1]]]}";
    CHECK_OK(natsbridge_message_add(deep, "d", "dictionary", (const uint8_t *)deep_json, strlen(deep_json)));
    char *three_json = NULL, *deep_sent = NULL;
    CHECK_OK(natsbridge_client_send(plain, "c.limits.x", three, &three_json));
    CHECK_OK(natsbridge_client_send(plain, "c.limits.x", deep, &deep_sent));

    natsbridge_connect_options *opts = NULL;
    natsbridge_client *limited = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "max_payloads", "2"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "max_json_depth", "3"));
    REQUIRE_OK(natsbridge_client_connect(nats_url, opts, &limited));
    natsbridge_envelope *env = NULL;
    if (three_json && deep_sent) {
        CHECK_STATUS(natsbridge_client_receive(limited, (const uint8_t *)three_json, strlen(three_json), &env),
                     NATSBRIDGE_STATUS_INVALID_ENVELOPE);
        CHECK_STATUS(natsbridge_client_receive(limited, (const uint8_t *)deep_sent, strlen(deep_sent), &env),
                     NATSBRIDGE_STATUS_PAYLOAD_TOO_LARGE);
        CHECK(env == NULL);
        /* The same bytes decode on a connection with the defaults. */
        CHECK_OK(natsbridge_client_receive(plain, (const uint8_t *)three_json, strlen(three_json), &env));
        natsbridge_envelope_free(env);
        env = NULL;
    }
    /* A subscription of the limited connection: within the limit it decodes, beyond it fails. */
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(limited, "c.limits.sub", NULL, &sub));
    CHECK_OK(natsbridge_client_send(plain, "c.limits.sub", two, NULL));
    CHECK_OK(natsbridge_client_send(plain, "c.limits.sub", three, NULL));
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    natsbridge_envelope_free(env);
    env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(sub, 5000, &env), NATSBRIDGE_STATUS_INVALID_ENVELOPE);
    CHECK(env == NULL);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(limited);

    /* Deeper than serde's recursion limit is refused. */
    limited = NULL;
    natsbridge_status deeper = natsbridge_connect_options_set(opts, "max_json_depth", "129");
    if (deeper == NATSBRIDGE_STATUS_OK) deeper = natsbridge_client_connect(nats_url, opts, &limited);
    CHECK_STATUS(deeper, NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(limited == NULL);
    natsbridge_connect_options_free(opts);
    natsbridge_string_free(three_json);
    natsbridge_string_free(deep_sent);
    natsbridge_message_free(three);
    natsbridge_message_free(two);
    natsbridge_message_free(deep);
    natsbridge_client_free(plain);
}

/* ---- the one-call style: natsbridge_smartsend / natsbridge_smartreceive without a client ---- */
static natsbridge_message *one_payload(const char *type, const uint8_t *data, size_t len, const char *threshold) {
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "p", type, data, len));
    if (threshold) CHECK_OK(natsbridge_message_set(msg, "size_threshold", threshold));
    return msg;
}

/* Decodes `json` with natsbridge_smartreceive and checks its one payload. */
static void check_one_call_receive(const char *json, const char *fileserver_url, const char *transport,
                                   const uint8_t *data, size_t len) {
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_smartreceive((const uint8_t *)json, strlen(json), NULL, fileserver_url, &env));
    if (!env) return;
    const char *got_transport = NULL;
    const uint8_t *got = NULL;
    size_t got_len = 0;
    CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &got_transport, &got, &got_len));
    CHECK(got_transport && strcmp(got_transport, transport) == 0);
    CHECK(bytes_equal(got, got_len, data, len));
    natsbridge_envelope_free(env);
}

static void test_one_call(void) {
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.onecall", NULL, &sub));
    size_t len = 5000;
    uint8_t *bytes = malloc(len);
    for (size_t i = 0; i < len; i++) bytes[i] = (uint8_t)(i * 7 + 1);

    /* NULL broker: NATS_URL. The subscriber gets what was sent. */
    natsbridge_message *msg = one_payload("binary", bytes, len, NULL);
    char *json = NULL;
    CHECK_OK(natsbridge_smartsend("c.onecall", msg, NULL, NULL, &json));
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    const char *cid = NULL;
    if (env) CHECK_OK(natsbridge_envelope_field(env, "correlation_id", &cid));
    CHECK(json && cid && strstr(json, cid) != NULL);
    natsbridge_envelope_free(env);
    /* A direct message decodes without a connection. */
    if (json) check_one_call_receive(json, NULL, "direct", bytes, len);
    natsbridge_string_free(json);
    natsbridge_message_free(msg);

    /* Links through the JetStream object store of the shared connection (an explicit broker_url). */
    msg = one_payload("binary", bytes, len, "100");
    json = NULL;
    CHECK_OK(natsbridge_smartsend("c.onecall", msg, nats_url, NULL, &json));
    CHECK(json && strstr(json, "\"data\":\"nats-obj://") != NULL);
    if (json) check_one_call_receive(json, NULL, "link", bytes, len);
    env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    natsbridge_envelope_free(env);
    natsbridge_string_free(json);

    /* Links through Plik when fileserver_url names it (sender and receiver alike). */
    const char *plik = getenv("PLIK_URL");
    CHECK(plik != NULL);
    if (plik) {
        json = NULL;
        CHECK_OK(natsbridge_smartsend("c.onecall.plik", msg, NULL, plik, &json));
        char prefix[256];
        snprintf(prefix, sizeof prefix, "\"data\":\"%s/file/", plik);
        CHECK(json && strstr(json, prefix) != NULL);
        if (json) check_one_call_receive(json, plik, "link", bytes, len);
        /* A receiver that was not told of this file server refuses its links. */
        env = NULL;
        if (json)
            CHECK_STATUS(natsbridge_smartreceive((const uint8_t *)json, strlen(json), NULL, NULL, &env),
                         NATSBRIDGE_STATUS_URL_NOT_ALLOWED);
        CHECK(env == NULL);
        natsbridge_string_free(json);
    }
    natsbridge_message_free(msg);

    /* Decode errors keep their codes; a broker nobody listens on is NATS_CONNECTION_FAILED. */
    CHECK_STATUS(natsbridge_smartreceive((const uint8_t *)"{oops", 5, NULL, NULL, &env), NATSBRIDGE_STATUS_INVALID_ENVELOPE);
    msg = one_payload("text", (const uint8_t *)"x", 1, NULL);
    CHECK_STATUS(natsbridge_smartsend("c.onecall", msg, "nats://127.0.0.1:1", NULL, NULL),
                 NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED);

    /* shared_close drains the shared connections; the next call connects again. */
    CHECK_OK(natsbridge_shared_close(5000));
    CHECK_OK(natsbridge_smartsend("c.onecall", msg, NULL, NULL, NULL));
    CHECK_OK(natsbridge_shared_close(5000));
    env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    const uint8_t *data = NULL;
    size_t got = 0;
    if (env) CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, NULL, &data, &got));
    CHECK(bytes_equal(data, got, "x", 1));
    natsbridge_envelope_free(env);
    natsbridge_message_free(msg);
    free(bytes);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

/* ---- fork: the child gets a runtime of its own ---- */
static void test_fork(void) {
    natsbridge_client *client = connect_client(NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.fork", NULL, &sub));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The parent's runtime threads do not exist here; the library must make new ones. */
        natsbridge_client *child = NULL;
        natsbridge_message *msg = NULL;
        int ok = natsbridge_client_connect(nats_url, NULL, &child) == NATSBRIDGE_STATUS_OK &&
                 natsbridge_message_new(&msg) == NATSBRIDGE_STATUS_OK &&
                 natsbridge_message_add(msg, "who", "text", (const uint8_t *)"child", 5) == NATSBRIDGE_STATUS_OK &&
                 natsbridge_client_send(child, "c.fork", msg, NULL) == NATSBRIDGE_STATUS_OK &&
                 natsbridge_client_close(child, 5000) == NATSBRIDGE_STATUS_OK;
        natsbridge_message_free(msg);
        natsbridge_client_free(child);
        _exit(ok ? 0 : 1);
    }
    CHECK(pid > 0);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    const uint8_t *data = NULL;
    size_t len = 0;
    if (env) CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, NULL, &data, &len));
    CHECK(bytes_equal(data, len, "child", 5));
    natsbridge_envelope_free(env);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
}

int main(int argc, char **argv) {
    nats_url = getenv("NATS_URL");
    if (!nats_url || argc < 2) {
        fprintf(stderr, "usage: NATS_URL=nats://... test_api <vector-manifest>\n");
        return 2;
    }
    test_invalid_arguments();
    test_vocabulary();
    test_connect_failure();
    round_trip(NULL, "direct");
    round_trip("0", "link");
    test_send_errors();
    test_vectors(argv[1]);
    test_request_reply();
    test_trace_headers();
    test_threads();
    test_plik();
    test_add_file();
    test_add_reader();
    test_streamed_link();
    test_s3();
    test_one_call();
    test_receive_limits();
    /* Under valgrind the forked child's own exit-time leak check sees its runtime threads cut
     * off by _exit; scripts/test.sh runs this test plainly and under ASan only. */
    if (!getenv("NATSBRIDGE_SKIP_FORK")) test_fork();
    test_export_spans();
    return check_summary("test_api");
}
