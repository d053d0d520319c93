/* libnatsbridge throughput: N small messages sent by one thread and received (decoded) by
 * another over one nats-server, and the cost of a 1 MB direct payload (smartsend with the
 * envelope returned, then smartreceive of that JSON). Not a test: prints numbers.
 * Usage: NATS_URL=... throughput [messages] [payload bytes] */
#define _POSIX_C_SOURCE 200809L
#include <natsbridge.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void must(natsbridge_status st, const char *what) {
    if (st != NATSBRIDGE_STATUS_OK) {
        fprintf(stderr, "%s: %s\n", what, natsbridge_last_error());
        exit(1);
    }
}

struct receiver {
    natsbridge_subscription *sub;
    int expected, received;
    double done;
};

static void *receive_all(void *arg) {
    struct receiver *r = arg;
    while (r->received < r->expected) {
        natsbridge_envelope *env = NULL;
        if (natsbridge_subscription_next(r->sub, 10000, &env) != NATSBRIDGE_STATUS_OK) break;
        natsbridge_envelope_free(env);
        r->received++;
    }
    r->done = now();
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 100;
    natsbridge_client *client = NULL;
    must(natsbridge_client_connect(NULL, NULL, &client), "connect");
    struct receiver r = {NULL, n, 0, 0};
    must(natsbridge_client_subscribe(client, "bench.c", NULL, &r.sub), "subscribe");
    uint8_t *payload = calloc(size, 1);
    natsbridge_message *msg = NULL;
    must(natsbridge_message_new(&msg), "message");
    must(natsbridge_message_add(msg, "data", "binary", payload, size), "add");

    pthread_t thread;
    pthread_create(&thread, NULL, receive_all, &r);
    double start = now();
    for (int i = 0; i < n; i++) must(natsbridge_client_send(client, "bench.c", msg, NULL), "send");
    double sent = now();
    pthread_join(thread, NULL);
    printf("%d x %zu-byte messages: send %.0f msgs/s, end to end %.0f msgs/s (%d received)\n", n, size,
           n / (sent - start), r.received / (r.done - start), r.received);

    /* 1 MB direct: build + publish with the JSON returned, then decode that JSON. */
    size_t big = 1000000;
    uint8_t *mb = malloc(big);
    for (size_t i = 0; i < big; i++) mb[i] = (uint8_t)(i * 7);
    natsbridge_message *big_msg = NULL;
    must(natsbridge_message_new(&big_msg), "message");
    must(natsbridge_message_add(big_msg, "mb", "binary", mb, big), "add");
    must(natsbridge_message_set(big_msg, "size_threshold", "2000000"), "threshold");
    int rounds = 20;
    double send_s = 0, receive_s = 0;
    for (int i = 0; i < rounds; i++) {
        char *json = NULL;
        double t0 = now();
        must(natsbridge_client_send(client, "bench.c.big", big_msg, &json), "send 1 MB");
        double t1 = now();
        natsbridge_envelope *env = NULL;
        must(natsbridge_client_receive(client, (const uint8_t *)json, strlen(json), &env), "receive 1 MB");
        double t2 = now();
        send_s += t1 - t0;
        receive_s += t2 - t1;
        natsbridge_envelope_free(env);
        natsbridge_string_free(json);
    }
    printf("1 MB direct payload: smartsend %.2f ms, smartreceive %.2f ms (mean of %d)\n", 1000 * send_s / rounds,
           1000 * receive_s / rounds, rounds);

    natsbridge_message_free(big_msg);
    natsbridge_message_free(msg);
    free(mb);
    free(payload);
    natsbridge_subscription_free(r.sub);
    natsbridge_client_free(client);
    return 0;
}
