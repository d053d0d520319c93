/* Custom upload/download handlers (function pointers + user_data), the seeds' contracts: they
 * run on the calling thread, get the configured file server and retry policy, serve the origin
 * of fileserver_url and allowed_origins only, their failures become UPLOAD_FAILED /
 * DOWNLOAD_FAILED with their message, and they cannot re-enter blocking calls.
 * Usage: NATS_URL=... test_handlers */
#define _GNU_SOURCE
#include "check.h"
#include <pthread.h>
#include <stdint.h>

#define SLOTS 8

/* An in-memory "file server": user_data for the handlers. */
struct memstore {
    const char *host; /* URLs are mem://<host>/<slot>/<dataname> */
    uint8_t *data[SLOTS];
    size_t len[SLOTS];
    int used;
    int uploads, downloads;
    pthread_t upload_thread, download_thread;
    char fileserver_url[128];
    uint32_t max_retries;
    uint64_t base_delay_ms, max_delay_ms;
    char correlation_id[64];
    int fail_uploads, fail_downloads, silent_failure;
    int reply_status; /* non-zero: answer with the seeds' JSON reply object carrying this status */
    natsbridge_client *client; /* for the re-entrancy check */
    natsbridge_status reentry;
};

static int upload(void *user_data, const char *fileserver_url, const char *dataname, const uint8_t *data, size_t len,
                  natsbridge_buffer *url_out) {
    struct memstore *m = user_data;
    m->uploads++;
    m->upload_thread = pthread_self();
    snprintf(m->fileserver_url, sizeof m->fileserver_url, "%s", fileserver_url);
    if (m->client) m->reentry = natsbridge_client_flush(m->client, 100);
    if (m->fail_uploads || m->used == SLOTS) {
        const char *why = "disk full";
        natsbridge_buffer_append(url_out, (const uint8_t *)why, strlen(why));
        return 1;
    }
    int slot = m->used++;
    m->data[slot] = malloc(len ? len : 1);
    if (len) memcpy(m->data[slot], data, len);
    m->len[slot] = len;
    char url[256];
    int n = m->reply_status
                ? snprintf(url, sizeof url, "{\"status\": %d, \"url\": \"mem://%s/%d/%s\"}", m->reply_status, m->host,
                           slot, dataname)
                : snprintf(url, sizeof url, "mem://%s/%d/%s", m->host, slot, dataname);
    return natsbridge_buffer_append(url_out, (const uint8_t *)url, (size_t)n) == NATSBRIDGE_STATUS_OK ? 0 : 1;
}

static int download(void *user_data, const char *url, uint32_t max_retries, uint64_t base_delay_ms,
                    uint64_t max_delay_ms, const char *correlation_id, natsbridge_buffer *out) {
    struct memstore *m = user_data;
    m->downloads++;
    m->download_thread = pthread_self();
    m->max_retries = max_retries;
    m->base_delay_ms = base_delay_ms;
    m->max_delay_ms = max_delay_ms;
    snprintf(m->correlation_id, sizeof m->correlation_id, "%s", correlation_id);
    int slot = -1;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "mem://%s/%%d/", m->host);
    if (m->fail_downloads || sscanf(url, prefix, &slot) != 1 || slot < 0 || slot >= m->used) {
        const char *why = "no such object";
        if (!m->silent_failure) natsbridge_buffer_append(out, (const uint8_t *)why, strlen(why));
        return 7;
    }
    return natsbridge_buffer_append(out, m->data[slot], m->len[slot]) == NATSBRIDGE_STATUS_OK ? 0 : 1;
}

/* A client whose handlers use `m`; `origins` (may be NULL) is set as allowed_origins. */
static natsbridge_client *connect_with(struct memstore *m, const char *fileserver_url, const char *origins) {
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "size_threshold", "10"));
    if (fileserver_url) REQUIRE_OK(natsbridge_connect_options_set(opts, "fileserver_url", fileserver_url));
    if (origins) REQUIRE_OK(natsbridge_connect_options_set(opts, "allowed_origins", origins));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "max_retries", "3"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "base_delay_ms", "50"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "max_delay_ms", "400"));
    REQUIRE_OK(natsbridge_connect_options_set_handlers(opts, upload, download, m));
    REQUIRE_OK(natsbridge_client_connect(getenv("NATS_URL"), opts, &client));
    natsbridge_connect_options_free(opts);
    return client;
}

static void free_store(struct memstore *m) {
    for (int i = 0; i < m->used; i++) free(m->data[i]);
}

static const char small[] = "tiny";
static const char large[] = "a payload well over the ten-byte threshold";

static natsbridge_message *small_and_large(void) {
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "small", "text", (const uint8_t *)small, strlen(small)));
    CHECK_OK(natsbridge_message_add(msg, "large", "binary", (const uint8_t *)large, strlen(large)));
    return msg;
}

/* The handlers' contract: arguments, threads, failures, re-entrancy. */
static void test_contract(void) {
    struct memstore m = {.host = "store"};
    natsbridge_client *client = connect_with(&m, "mem://store", NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.handlers", NULL, &sub));

    /* A small payload stays direct; a large one goes through the upload handler. */
    natsbridge_message *msg = small_and_large();
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, &json));
    CHECK(m.uploads == 1);
    CHECK(pthread_equal(m.upload_thread, pthread_self()));
    CHECK(strcmp(m.fileserver_url, "mem://store") == 0);
    CHECK(json && strstr(json, "\"data\":\"mem://store/0/large\"") != NULL);
    natsbridge_string_free(json);

    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    CHECK(m.downloads == 1);
    CHECK(pthread_equal(m.download_thread, pthread_self()));
    /* The download handler gets the connection's retry policy and the message's correlation id. */
    CHECK(m.max_retries == 3 && m.base_delay_ms == 50 && m.max_delay_ms == 400);
    if (env) {
        const char *cid = NULL, *transport = NULL;
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_OK(natsbridge_envelope_field(env, "correlation_id", &cid));
        CHECK(cid && strlen(cid) == 36 && strcmp(cid, m.correlation_id) == 0);
        CHECK_OK(natsbridge_envelope_payload(env, 1, NULL, NULL, &transport, &data, &len));
        CHECK(transport && strcmp(transport, "link") == 0);
        CHECK(len == strlen(large) && memcmp(data, large, len) == 0);
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, NULL, NULL));
        CHECK(transport && strcmp(transport, "direct") == 0);
        natsbridge_envelope_free(env);
    }

    /* A failing download handler: DOWNLOAD_FAILED with its code, message and the correlation id. */
    m.fail_downloads = 1;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, NULL));
    env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(sub, 5000, &env), NATSBRIDGE_STATUS_DOWNLOAD_FAILED);
    CHECK(strstr(natsbridge_last_error(), "fileserver_download_handler failed: returned 7: no such object") != NULL);
    CHECK(strlen(natsbridge_last_error_correlation_id()) == 36);
    CHECK(env == NULL);
    /* ...and without a message, its return code alone. */
    m.silent_failure = 1;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, NULL));
    env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(sub, 5000, &env), NATSBRIDGE_STATUS_DOWNLOAD_FAILED);
    CHECK(strstr(natsbridge_last_error(), "returned 7") != NULL && strstr(natsbridge_last_error(), "no such") == NULL);
    m.fail_downloads = m.silent_failure = 0;

    /* A failing upload falls back to direct while the envelope fits... */
    m.fail_uploads = 1;
    json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, &json));
    CHECK(json && strstr(json, "mem://") == NULL);
    natsbridge_string_free(json);
    env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    natsbridge_envelope_free(env);
    /* ...and is UPLOAD_FAILED, with the handler's message, when it cannot (2 MB > max_payload). */
    size_t big_len = 2 * 1024 * 1024;
    uint8_t *big = calloc(big_len, 1);
    natsbridge_message *big_msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&big_msg));
    CHECK_OK(natsbridge_message_add(big_msg, "big", "binary", big, big_len));
    CHECK_STATUS(natsbridge_client_send(client, "c.handlers", big_msg, NULL), NATSBRIDGE_STATUS_UPLOAD_FAILED);
    CHECK(strstr(natsbridge_last_error(), "disk full") != NULL);
    m.fail_uploads = 0;

    /* The seeds' reply object: its url is the link; a status outside 2xx fails the upload. */
    m.reply_status = 201;
    json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, &json));
    CHECK(json && strstr(json, "\"data\":\"mem://store/") != NULL);
    natsbridge_string_free(json);
    env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    natsbridge_envelope_free(env);
    m.reply_status = 503;
    CHECK_STATUS(natsbridge_client_send(client, "c.handlers", big_msg, NULL), NATSBRIDGE_STATUS_UPLOAD_FAILED);
    CHECK(strstr(natsbridge_last_error(), "fileserver_upload_handler returned status 503") != NULL);
    m.reply_status = 0;

    /* A per-message upload handler replaces the client's for that message. */
    struct memstore other = {.host = "store"};
    int uploads_before = m.uploads;
    CHECK_OK(natsbridge_message_set_upload_handler(big_msg, upload, &other));
    json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.handlers.elsewhere", big_msg, &json));
    CHECK(other.uploads == 1 && m.uploads == uploads_before);
    CHECK(other.used == 1 && other.len[0] == big_len);
    CHECK(strcmp(other.fileserver_url, "mem://store") == 0); /* the client's fileserver_url */
    CHECK(json && strstr(json, "\"data\":\"mem://store/0/big\"") != NULL);
    natsbridge_string_free(json);
    CHECK_STATUS(natsbridge_message_set_upload_handler(big_msg, NULL, &other), NATSBRIDGE_STATUS_INVALID_ARGUMENT);

    /* The one-call smartsend takes the per-message handler too, with its fileserver_url. */
    json = NULL;
    CHECK_OK(natsbridge_smartsend("c.handlers.elsewhere", big_msg, NULL, "mem://onecall", &json));
    CHECK(other.uploads == 2 && strcmp(other.fileserver_url, "mem://onecall") == 0);
    CHECK(json && strstr(json, "\"data\":\"mem://store/1/big\"") != NULL);
    natsbridge_string_free(json);
    CHECK_OK(natsbridge_shared_close(5000));
    free_store(&other);
    natsbridge_message_free(big_msg);
    free(big);

    /* A handler that calls back into a blocking function gets INVALID_ARGUMENT, not a deadlock. */
    m.client = client;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, NULL));
    CHECK(m.reentry == NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    m.client = NULL;
    env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    natsbridge_envelope_free(env);

    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
    free_store(&m);
}

/* A download handler serves the origin of fileserver_url and allowed_origins, nothing else. */
static void test_scopes(void) {
    /* It needs somewhere to serve. */
    struct memstore m = {.host = "elsewhere"};
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set_handlers(opts, NULL, download, &m));
    CHECK_STATUS(natsbridge_client_connect(getenv("NATS_URL"), opts, &client), NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    CHECK(client == NULL);
    natsbridge_connect_options_free(opts);

    /* Links to mem://elsewhere while the handler serves mem://store: refused before any call. */
    client = connect_with(&m, "mem://store", NULL);
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.scopes", NULL, &sub));
    natsbridge_message *msg = small_and_large();
    CHECK_OK(natsbridge_client_send(client, "c.scopes", msg, NULL));
    natsbridge_envelope *env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(sub, 5000, &env), NATSBRIDGE_STATUS_URL_NOT_ALLOWED);
    CHECK(m.downloads == 0);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);

    /* allowed_origins adds to its list on every call: both origins are served. */
    struct memstore n = {.host = "elsewhere"};
    natsbridge_connect_options *o = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&o));
    REQUIRE_OK(natsbridge_connect_options_set(o, "size_threshold", "10"));
    REQUIRE_OK(natsbridge_connect_options_set(o, "allowed_origins", "mem://elsewhere"));
    REQUIRE_OK(natsbridge_connect_options_set(o, "allowed_origins", "other:"));
    REQUIRE_OK(natsbridge_connect_options_set_handlers(o, upload, download, &n));
    REQUIRE_OK(natsbridge_client_connect(getenv("NATS_URL"), o, &client));
    natsbridge_connect_options_free(o);
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.scopes", NULL, &sub));
    CHECK_OK(natsbridge_client_send(client, "c.scopes", msg, NULL));
    env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    CHECK(n.downloads == 1);
    CHECK(strcmp(n.fileserver_url, "") == 0); /* no fileserver_url: the upload handler gets "" */
    natsbridge_envelope_free(env);

    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
    free_store(&m);
    free_store(&n);
}

int main(void) {
    if (!getenv("NATS_URL")) return 2;
    test_contract();
    test_scopes();
    return check_summary("test_handlers");
}
