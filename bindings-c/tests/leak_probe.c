/* Deliberately leaks one message (no natsbridge_message_free): scripts/test.sh expects valgrind
 * and LeakSanitizer to fail on it, proving that the leak gates of the real tests can fail. */
#include <natsbridge.h>
#include <stdio.h>

int main(void) {
    natsbridge_message *msg = NULL;
    if (natsbridge_message_new(&msg) != NATSBRIDGE_STATUS_OK) return 2;
    natsbridge_message_add(msg, "lost", "text", (const uint8_t *)"forgotten", 9);
    msg = NULL; /* the only pointer is gone */
    puts("leak_probe: leaked one message");
    return 0;
}
