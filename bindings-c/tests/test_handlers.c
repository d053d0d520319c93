/* Custom upload/download handlers (function pointers + user_data): they run on the calling
 * thread, their failures become UPLOAD_FAILED / DOWNLOAD_FAILED with their message, and they
 * cannot re-enter blocking calls. Usage: NATS_URL=... test_handlers */
#define _GNU_SOURCE
#include "check.h"
#include <pthread.h>
#include <stdint.h>

#define SLOTS 8

/* An in-memory "file server": user_data for the handlers. */
struct memstore {
    uint8_t *data[SLOTS];
    size_t len[SLOTS];
    int used;
    int uploads, downloads;
    pthread_t upload_thread, download_thread;
    int fail_uploads, fail_downloads;
    natsbridge_client *client; /* for the re-entrancy check */
    natsbridge_status reentry;
};

static int upload(void *user_data, const char *fileserver_url, const char *dataname, const char *correlation_id,
                  const uint8_t *data, size_t len, natsbridge_buffer *url_out) {
    struct memstore *m = user_data;
    (void)fileserver_url;
    (void)correlation_id;
    m->uploads++;
    m->upload_thread = pthread_self();
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
    char url[128];
    int n = snprintf(url, sizeof url, "mem://store/%d/%s", slot, dataname);
    return natsbridge_buffer_append(url_out, (const uint8_t *)url, (size_t)n) == NATSBRIDGE_STATUS_OK ? 0 : 1;
}

static int download(void *user_data, const char *url, uint64_t size, const char *correlation_id, natsbridge_buffer *out) {
    struct memstore *m = user_data;
    (void)size;
    (void)correlation_id;
    m->downloads++;
    m->download_thread = pthread_self();
    int slot = -1;
    if (m->fail_downloads || sscanf(url, "mem://store/%d/", &slot) != 1 || slot < 0 || slot >= m->used) {
        const char *why = "no such object";
        natsbridge_buffer_append(out, (const uint8_t *)why, strlen(why));
        return 7;
    }
    return natsbridge_buffer_append(out, m->data[slot], m->len[slot]) == NATSBRIDGE_STATUS_OK ? 0 : 1;
}

static natsbridge_client *connect_with(struct memstore *m, const char *threshold) {
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "size_threshold", threshold));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "handler_url_prefix", "mem://store/"));
    REQUIRE_OK(natsbridge_connect_options_set_handlers(opts, upload, download, m));
    REQUIRE_OK(natsbridge_client_connect(getenv("NATS_URL"), opts, &client));
    natsbridge_connect_options_free(opts);
    return client;
}

int main(void) {
    if (!getenv("NATS_URL")) return 2;
    struct memstore m = {0};
    natsbridge_client *client = connect_with(&m, "10");
    natsbridge_subscription *sub = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, "c.handlers", NULL, &sub));

    /* A small payload stays direct; a large one goes through the upload handler. */
    static const char small[] = "tiny";
    static const char large[] = "a payload well over the ten-byte threshold";
    natsbridge_message *msg = NULL;
    REQUIRE_OK(natsbridge_message_new(&msg));
    CHECK_OK(natsbridge_message_add(msg, "small", "text", (const uint8_t *)small, strlen(small)));
    CHECK_OK(natsbridge_message_add(msg, "large", "binary", (const uint8_t *)large, strlen(large)));
    char *json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, &json));
    CHECK(m.uploads == 1);
    CHECK(pthread_equal(m.upload_thread, pthread_self()));
    CHECK(json && strstr(json, "\"data\":\"mem://store/0/large\"") != NULL);
    natsbridge_string_free(json);

    natsbridge_envelope *env = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    CHECK(m.downloads == 1);
    CHECK(pthread_equal(m.download_thread, pthread_self()));
    if (env) {
        const char *transport = NULL;
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_OK(natsbridge_envelope_payload(env, 1, NULL, NULL, &transport, &data, &len));
        CHECK(transport && strcmp(transport, "link") == 0);
        CHECK(len == strlen(large) && memcmp(data, large, len) == 0);
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, &transport, NULL, NULL));
        CHECK(transport && strcmp(transport, "direct") == 0);
        natsbridge_envelope_free(env);
    }

    /* A failing download handler: DOWNLOAD_FAILED with its message and the correlation id. */
    m.fail_downloads = 1;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, NULL));
    env = NULL;
    CHECK_STATUS(natsbridge_subscription_next(sub, 5000, &env), NATSBRIDGE_STATUS_DOWNLOAD_FAILED);
    CHECK(strstr(natsbridge_last_error(), "no such object") != NULL);
    CHECK(strstr(natsbridge_last_error(), "returned 7") != NULL);
    CHECK(strlen(natsbridge_last_error_correlation_id()) == 36);
    CHECK(env == NULL);
    m.fail_downloads = 0;

    /* A failing upload falls back to direct while the envelope fits... */
    m.fail_uploads = 1;
    json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, &json));
    CHECK(json && strstr(json, "mem://") == NULL);
    natsbridge_string_free(json);
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

    /* A per-message upload handler replaces the client's for that message. */
    struct memstore other = {0};
    int uploads_before = m.uploads;
    CHECK_OK(natsbridge_message_set_upload_handler(big_msg, upload, &other));
    json = NULL;
    CHECK_OK(natsbridge_client_send(client, "c.handlers.elsewhere", big_msg, &json));
    CHECK(other.uploads == 1 && m.uploads == uploads_before);
    CHECK(other.used == 1 && other.len[0] == big_len);
    CHECK(json && strstr(json, "\"data\":\"mem://store/0/big\"") != NULL);
    natsbridge_string_free(json);
    free(other.data[0]);
    natsbridge_message_free(big_msg);
    free(big);

    /* A handler that calls back into a blocking function gets INVALID_ARGUMENT, not a deadlock. */
    m.client = client;
    CHECK_OK(natsbridge_client_send(client, "c.handlers", msg, NULL));
    CHECK(m.reentry == NATSBRIDGE_STATUS_INVALID_ARGUMENT);
    m.client = NULL;
    CHECK_OK(natsbridge_subscription_next(sub, 5000, &env));
    natsbridge_envelope_free(env);

    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
    natsbridge_client_free(client);
    for (int i = 0; i < m.used; i++) free(m.data[i]);
    return check_summary("test_handlers");
}
