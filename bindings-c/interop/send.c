/* tests-interop sender (tests-interop/README.md): one message per run.
 * Usage: send [--jetstream] <server> <subject> <threshold> [<payload_type> <dataname> <file>]...
 * --jetstream: a durable publish, returning once the stream has stored it.
 * Files hold the serialized input: text UTF-8, dictionary/jsontable JSON, arrowtable a JSON
 * array of rows (turned into Arrow IPC here), byte types the raw bytes. */
#include <natsbridge.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int fail(const char *what) {
    fprintf(stderr, "error: %s: %s\n", what, natsbridge_last_error());
    return 1;
}

int main(int argc, char **argv) {
    int jetstream = argc > 1 && strcmp(argv[1], "--jetstream") == 0;
    if (jetstream) {
        argv++;
        argc--;
    }
    if (argc < 4 || (argc - 4) % 3 != 0) {
        fprintf(stderr, "usage: send [--jetstream] <server> <subject> <threshold> [<type> <dataname> <file>]...\n");
        return 2;
    }
    natsbridge_connect_options *opts = NULL;
    natsbridge_client *client = NULL;
    natsbridge_message *msg = NULL;
    natsbridge_connect_options_new(&opts);
    natsbridge_message_new(&msg);
    if (jetstream && natsbridge_connect_options_set(opts, "jetstream", "true") != NATSBRIDGE_STATUS_OK)
        return fail("jetstream");
    if (natsbridge_message_set(msg, "size_threshold", argv[3]) != NATSBRIDGE_STATUS_OK) return fail("threshold");
    for (int i = 4; i < argc; i += 3) {
        const char *type = argv[i], *name = argv[i + 1];
        size_t len = 0;
        uint8_t *data = read_file(argv[i + 2], &len);
        if (!data) {
            fprintf(stderr, "error: cannot read %s\n", argv[i + 2]);
            return 1;
        }
        natsbridge_status st;
        if (strcmp(type, "arrowtable") == 0) {
            uint8_t *ipc = NULL;
            size_t ipc_len = 0;
            st = natsbridge_arrow_from_json_rows(data, len, &ipc, &ipc_len);
            if (st == NATSBRIDGE_STATUS_OK) st = natsbridge_message_add(msg, name, type, ipc, ipc_len);
            natsbridge_bytes_free(ipc, ipc_len);
        } else {
            st = natsbridge_message_add(msg, name, type, data, len);
        }
        free(data);
        if (st != NATSBRIDGE_STATUS_OK) return fail(name);
    }
    if (natsbridge_client_connect(argv[1], opts, &client) != NATSBRIDGE_STATUS_OK) return fail("connect");
    if (natsbridge_client_send(client, argv[2], msg, NULL) != NATSBRIDGE_STATUS_OK) return fail("send");
    if (natsbridge_client_close(client, 10000) != NATSBRIDGE_STATUS_OK) return fail("close");
    natsbridge_client_free(client);
    natsbridge_message_free(msg);
    natsbridge_connect_options_free(opts);
    return 0;
}
