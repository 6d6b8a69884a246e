/*
 * The Paho C side of the store_cost bench (benches/benches/store_cost.rs): a QoS 1 publisher on
 * Paho's MQTTClient, with or without its file persistence, publishing as the bench's sansmq
 * publisher does: at most WINDOW messages unacknowledged, the next publish waiting for the oldest
 * outstanding one to be acknowledged.
 *
 *   store_cost_publisher URI CLIENT_ID PERSISTENCE_DIR|- MESSAGES WINDOW PAYLOAD_BYTES
 *
 * PERSISTENCE_DIR "-" is MQTTCLIENT_PERSISTENCE_NONE; a directory is
 * MQTTCLIENT_PERSISTENCE_DEFAULT there (a file per message, written when the PUBLISH is sent and
 * removed at its PUBACK, never fsynced).
 *
 * The client runs in Paho's multithreaded mode (MQTTClient_setCallbacks): its own thread reads the
 * socket and calls delivered() at each PUBACK, which frees a place in the window. Without
 * callbacks, MQTTClient_waitForCompletion yields for 100 ms whenever the message is not complete
 * yet, which would measure that sleep rather than the client.
 *
 * Prints one line once every message is acknowledged: the publishing loop's wall time in
 * microseconds and this process's user and system CPU time over the loop (every thread,
 * getrusage(RUSAGE_SELF)), also in microseconds. Connecting and disconnecting are outside it.
 * Errors go to stderr, with exit status 1.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <MQTTClient.h>

struct window {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    long outstanding;
    int lost;
};

static void delivered(void *context, MQTTClient_deliveryToken token)
{
    struct window *w = context;
    (void)token;
    pthread_mutex_lock(&w->lock);
    w->outstanding--;
    pthread_cond_signal(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

static int arrived(void *context, char *topic, int topic_len, MQTTClient_message *message)
{
    /* The publisher subscribes to nothing; Paho requires the callback all the same. */
    (void)context;
    (void)topic_len;
    MQTTClient_freeMessage(&message);
    MQTTClient_free(topic);
    return 1;
}

static void lost(void *context, char *cause)
{
    struct window *w = context;
    (void)cause;
    pthread_mutex_lock(&w->lock);
    w->lost = 1;
    pthread_cond_signal(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

/* Waits until at most `most` messages are outstanding; 0, or -1 if the connection was lost. */
static int wait_for_window(struct window *w, long most)
{
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    while (w->outstanding > most && !w->lost)
        pthread_cond_wait(&w->changed, &w->lock);
    if (w->lost)
        rc = -1;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static long long micros(const struct timeval *tv)
{
    return (long long)tv->tv_sec * 1000000 + tv->tv_usec;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "store_cost_publisher: %s: %s (%d)\n", what, MQTTClient_strerror(rc), rc);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: store_cost_publisher URI CLIENT_ID PERSISTENCE_DIR|- MESSAGES "
                        "WINDOW PAYLOAD_BYTES\n");
        return 2;
    }
    const char *uri = argv[1], *client_id = argv[2], *dir = argv[3];
    long messages = atol(argv[4]), window = atol(argv[5]), payload_len = atol(argv[6]);
    if (messages < 1 || window < 1 || window > 65535 || payload_len < 0) {
        fprintf(stderr, "store_cost_publisher: MESSAGES and WINDOW must be positive, PAYLOAD_BYTES not negative\n");
        return 2;
    }
    int persistence = strcmp(dir, "-") == 0 ? MQTTCLIENT_PERSISTENCE_NONE
                                            : MQTTCLIENT_PERSISTENCE_DEFAULT;

    char *payload = malloc(payload_len > 0 ? payload_len : 1);
    if (payload == NULL) {
        fprintf(stderr, "store_cost_publisher: out of memory\n");
        return 1;
    }
    for (long i = 0; i < payload_len; i++)
        payload[i] = (char)(i % 251);
    char topic[256];
    snprintf(topic, sizeof topic, "bench/%s", client_id);

    struct window w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    MQTTClient client;
    int rc = MQTTClient_create(&client, uri, client_id, persistence,
                               persistence == MQTTCLIENT_PERSISTENCE_DEFAULT ? (void *)dir : NULL);
    if (rc != MQTTCLIENT_SUCCESS)
        return fail("create", rc);
    rc = MQTTClient_setCallbacks(client, &w, lost, arrived, delivered);
    if (rc != MQTTCLIENT_SUCCESS)
        return fail("set callbacks", rc);

    MQTTClient_connectOptions options = MQTTClient_connectOptions_initializer;
    options.MQTTVersion = MQTTVERSION_3_1_1;
    options.keepAliveInterval = 60;
    /* Kept, as the bench's sansmq client keeps its session: the store is there to resume it. */
    options.cleansession = 0;
    /* The window; delivered() runs after the PUBACK took the message out of Paho's count. */
    options.maxInflightMessages = (int)window;
    rc = MQTTClient_connect(client, &options);
    if (rc != MQTTCLIENT_SUCCESS)
        return fail("connect", rc);

    struct timespec start, end;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < messages; i++) {
        if (wait_for_window(&w, window - 1) != 0) {
            fprintf(stderr, "store_cost_publisher: connection lost after %ld messages\n", i);
            return 1;
        }
        pthread_mutex_lock(&w.lock);
        w.outstanding++;
        pthread_mutex_unlock(&w.lock);
        MQTTClient_message message = MQTTClient_message_initializer;
        message.payload = payload;
        message.payloadlen = (int)payload_len;
        message.qos = 1;
        message.retained = 0;
        MQTTClient_deliveryToken token;
        rc = MQTTClient_publishMessage(client, topic, &message, &token);
        if (rc != MQTTCLIENT_SUCCESS)
            return fail("publish", rc);
    }
    if (wait_for_window(&w, 0) != 0) {
        fprintf(stderr, "store_cost_publisher: connection lost before the last PUBACK\n");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    getrusage(RUSAGE_SELF, &after);

    long long wall_us = (long long)(end.tv_sec - start.tv_sec) * 1000000
                        + (end.tv_nsec - start.tv_nsec) / 1000;
    printf("%lld %lld %lld\n", wall_us, micros(&after.ru_utime) - micros(&before.ru_utime),
           micros(&after.ru_stime) - micros(&before.ru_stime));

    MQTTClient_disconnect(client, 10000);
    MQTTClient_destroy(&client);
    free(payload);
    return 0;
}
