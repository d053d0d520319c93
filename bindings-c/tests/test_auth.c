/* Authentication through the C API against real nats-servers: an nkey seed, a user name and
 * password, a token, a .creds file (decentralized JWT auth) and TLS with a CA and a client
 * certificate; each good, and bad with its status. scripts/test.sh starts the servers and makes
 * the keys, JWTs and certificates (servers/python's starter, --auth) and passes them in the
 * environment:
 *   USERS_URL NKEY_SEED NKEY_OTHER_SEED PASSWORD_USER PASSWORD
 *   TOKEN_URL TOKEN
 *   CREDS_URL CREDS_FILE FOREIGN_CREDS_FILE
 *   TLS_URL TLS_CA_FILE TLS_OTHER_CA_FILE TLS_CERT_FILE TLS_KEY_FILE */
#define _GNU_SOURCE
#include "check.h"
#include <unistd.h>

static const char *env(const char *name) {
    const char *value = getenv(name);
    if (!value || !*value) {
        fprintf(stderr, "FATAL: %s is not set (scripts/test.sh sets it)\n", name);
        exit(2);
    }
    return value;
}

/* Connects to `url` with the NULL-terminated option pairs `kv`; a refused connection gives up
 * at once (no reconnect attempts, a 3 s bound). */
static natsbridge_status connect_with(const char *url, const char *const *kv, natsbridge_client **out) {
    natsbridge_connect_options *opts = NULL;
    REQUIRE_OK(natsbridge_connect_options_new(&opts));
    /* Refusals come from the server (authorization violation, TLS), never from this timeout;
     * it only bounds a connection the server accepts, which under valgrind on a loaded machine
     * took over 3 s (an nkey handshake timed out at 3 s beside three fuzzers). */
    REQUIRE_OK(natsbridge_connect_options_set(opts, "connect_timeout_ms", "30000"));
    REQUIRE_OK(natsbridge_connect_options_set(opts, "max_reconnect_attempts", "0"));
    for (; kv && kv[0]; kv += 2) REQUIRE_OK(natsbridge_connect_options_set(opts, kv[0], kv[1]));
    natsbridge_status status = natsbridge_client_connect(url, opts, out);
    natsbridge_connect_options_free(opts);
    return status;
}

/* Connects and round-trips one text payload. */
static void check_round_trip(const char *what, const char *url, const char *const *kv) {
    natsbridge_client *client = NULL;
    natsbridge_status status = connect_with(url, kv, &client);
    CHECK_STATUS(status, NATSBRIDGE_STATUS_OK);
    if (status != NATSBRIDGE_STATUS_OK) {
        fprintf(stderr, "  (%s)\n", what);
        return;
    }
    char subject[64];
    snprintf(subject, sizeof subject, "c.auth.%ld", (long)getpid());
    natsbridge_subscription *sub = NULL;
    natsbridge_message *msg = NULL;
    natsbridge_envelope *env = NULL;
    REQUIRE_OK(natsbridge_client_subscribe(client, subject, NULL, &sub));
    REQUIRE_OK(natsbridge_message_new(&msg));
    REQUIRE_OK(natsbridge_message_add(msg, "m", "text", (const uint8_t *)what, strlen(what)));
    CHECK_OK(natsbridge_client_send(client, subject, msg, NULL));
    CHECK_OK(natsbridge_subscription_next(sub, 10000, &env));
    const uint8_t *data = NULL;
    size_t len = 0;
    if (env) {
        CHECK_OK(natsbridge_envelope_payload(env, 0, NULL, NULL, NULL, &data, &len));
        CHECK(len == strlen(what) && memcmp(data, what, len) == 0);
    }
    natsbridge_envelope_free(env);
    natsbridge_message_free(msg);
    natsbridge_subscription_free(sub);
    CHECK_OK(natsbridge_client_close(client, 5000));
    natsbridge_client_free(client);
}

/* The connection is refused with `expected`, and the message names `reason`. */
static void check_refused(const char *url, const char *const *kv, natsbridge_status expected, const char *reason) {
    natsbridge_client *client = NULL;
    CHECK_STATUS(connect_with(url, kv, &client), expected);
    CHECK(client == NULL);
    CHECK(strstr(natsbridge_last_error(), reason) != NULL);
    natsbridge_client_free(client);
}

/* One server knows a user by an nkey and another by a password. */
static void test_nkey_and_password(void) {
    const char *url = env("USERS_URL");
    const char *const good[] = {"nkey", env("NKEY_SEED"), NULL};
    const char *const other[] = {"nkey", env("NKEY_OTHER_SEED"), NULL}; /* valid, but unknown there */
    const char *const user[] = {"user", env("PASSWORD_USER"), "password", env("PASSWORD"), NULL};
    const char *const wrong_password[] = {"user", env("PASSWORD_USER"), "password", "wrong", NULL};
    const char *const not_a_seed[] = {"nkey", "SUAnot-a-seed", NULL}; /* refused before connecting */
    check_round_trip("nkey", url, good);
    check_round_trip("password", url, user);
    check_refused(url, other, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "authorization violation");
    check_refused(url, wrong_password, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "authorization violation");
    check_refused(url, NULL, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "authorization violation");
    check_refused(url, not_a_seed, NATSBRIDGE_STATUS_INVALID_ARGUMENT, "not an nkey seed");
}

static void test_token(void) {
    const char *url = env("TOKEN_URL");
    const char *const good[] = {"token", env("TOKEN"), NULL};
    const char *const wrong[] = {"token", "wrong", NULL};
    check_round_trip("token", url, good);
    check_refused(url, wrong, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "authorization violation");
}

static void test_creds_file(void) {
    const char *url = env("CREDS_URL");
    const char *const good[] = {"credentials_file", env("CREDS_FILE"), NULL};
    /* A user of another operator: its JWT does not chain to the operator the server trusts. */
    const char *const foreign[] = {"credentials_file", env("FOREIGN_CREDS_FILE"), NULL};
    const char *const missing[] = {"credentials_file", "/nonexistent/missing.creds", NULL};
    check_round_trip("creds", url, good);
    check_refused(url, foreign, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "authorization violation");
    check_refused(url, NULL, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "authorization violation");
    /* A file that is not there is a configuration mistake, found before connecting. */
    check_refused(url, missing, NATSBRIDGE_STATUS_INVALID_ARGUMENT, "missing.creds");
}

static void test_tls(void) {
    const char *url = env("TLS_URL");
    const char *ca = env("TLS_CA_FILE"), *cert = env("TLS_CERT_FILE"), *key = env("TLS_KEY_FILE");
    const char *const good[] = {"tls_ca_file", ca, "tls_cert_file", cert, "tls_key_file", key,
                                "tls_required", "true", NULL};
    /* The server's certificate under a CA we do not trust. */
    const char *const other_ca[] = {"tls_ca_file", env("TLS_OTHER_CA_FILE"), "tls_cert_file", cert,
                                    "tls_key_file", key, "tls_required", "true", NULL};
    /* The server requires a client certificate. */
    const char *const no_cert[] = {"tls_ca_file", ca, "tls_required", "true", NULL};
    check_round_trip("tls", url, good);
    check_refused(url, other_ca, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "cannot connect");
    check_refused(url, no_cert, NATSBRIDGE_STATUS_NATS_CONNECTION_FAILED, "cannot connect");
}

int main(void) {
    test_nkey_and_password();
    test_token();
    test_creds_file();
    test_tls();
    return check_summary("test_auth");
}
