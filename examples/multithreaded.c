/*
 * Stint from many threads at once: THREADS threads each log EVENTS custom events while one more
 * thread keeps moving the app between foreground and background (open/close session) and
 * switching users. Afterwards the counters must add up exactly, the session listener must have
 * seen every session start and end, and a restart must recover every datapoint.
 *
 *   multithreaded [DATA_DIRECTORY [THREADS [EVENTS]]]     (defaults: mkdtemp, 4, 2000)
 *
 * Exits 0 when everything adds up, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stint.h"

#define MAX_THREADS 64
#define MIN_TOGGLES 16

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started = PTHREAD_COND_INITIALIZER;
static int go;               /* the start gate, so all threads really run at once */
static int loggers_running;  /* the toggler runs until this drops to 0 */
static int failures;
static char first_failure[1024];
static uint64_t listener_started, listener_ended;

static long events_per_thread = 2000;

static void fail(const char *what, StintStatus status)
{
    char message[512];
    stint_last_error_message(message, sizeof message);
    pthread_mutex_lock(&mutex);
    if (failures++ == 0) {
        snprintf(first_failure, sizeof first_failure, "%s returned %d: %s", what, (int)status,
                 message);
    }
    pthread_mutex_unlock(&mutex);
}

#define CALL(call)                                   \
    do {                                             \
        StintStatus status_ = (call);                \
        if (status_ != STINT_STATUS_OK) {            \
            fail(#call, status_);                    \
        }                                            \
    } while (0)

static void on_session_event(const StintSessionEvent *event, void *user_data)
{
    (void)user_data;
    pthread_mutex_lock(&mutex);
    if (event->kind == STINT_SESSION_EVENT_KIND_STARTED) {
        listener_started++;
    } else {
        listener_ended++;
    }
    pthread_mutex_unlock(&mutex);
}

static void wait_for_start(void)
{
    pthread_mutex_lock(&mutex);
    while (!go) {
        pthread_cond_wait(&started, &mutex);
    }
    pthread_mutex_unlock(&mutex);
}

static void *log_events(void *arg)
{
    long thread = (long)(intptr_t)arg;
    long i;
    char properties[128];
    char session_id[STINT_SESSION_ID_BUFFER_LEN];

    wait_for_start();
    for (i = 0; i < events_per_thread; i++) {
        snprintf(properties, sizeof properties, "{\"thread\":%ld,\"index\":%ld}", thread, i);
        CALL(stint_log_custom_event("worker_event", properties));
        if (i % 256 == 0) {
            CALL(stint_get_session_id(session_id, sizeof session_id));
        }
    }
    pthread_mutex_lock(&mutex);
    loggers_running--;
    pthread_mutex_unlock(&mutex);
    return NULL;
}

struct toggler_result {
    long toggles;
    long user_changes;
};

static void *toggle_sessions(void *arg)
{
    struct toggler_result *result = (struct toggler_result *)arg;
    int running = 1;

    wait_for_start();
    /* At least MIN_TOGGLES, so that user changes happen even when the loggers are quick. */
    while (running || result->toggles < MIN_TOGGLES) {
        CALL(stint_close_session());
        CALL(stint_open_session());
        result->toggles++;
        if (result->toggles % 2 == 0) {
            /* Alternating users: every change ends the open session and starts another. */
            CALL(stint_change_user(result->user_changes % 2 == 0 ? "alice" : "bob"));
            result->user_changes++;
        }
        pthread_mutex_lock(&mutex);
        running = loggers_running > 0;
        pthread_mutex_unlock(&mutex);
    }
    return NULL;
}

static int get_stats(StintStats *stats)
{
    StintStatus status = stint_get_stats(stats);
    if (status != STINT_STATUS_OK) {
        fail("stint_get_stats", status);
        return 0;
    }
    return 1;
}

static int initialize(const char *options)
{
    StintStatus status = stint_initialize("multithreaded-api-key", options);
    if (status != STINT_STATUS_OK) {
        fail("stint_initialize", status);
        return 0;
    }
    return 1;
}

static int report(int ok)
{
    if (failures > 0) {
        fprintf(stderr, "multithreaded: %d calls failed; first: %s\n", failures, first_failure);
        ok = 0;
    }
    printf("multithreaded: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}

#define EXPECT_EQUAL(what, actual, expected)                                                 \
    do {                                                                                     \
        unsigned long long actual_ = (unsigned long long)(actual);                           \
        unsigned long long expected_ = (unsigned long long)(expected);                       \
        printf("  %-44s %llu (expected %llu)%s\n", what, actual_, expected_,                 \
               actual_ == expected_ ? "" : "  <-- MISMATCH");                                \
        if (actual_ != expected_) {                                                          \
            ok = 0;                                                                          \
        }                                                                                    \
    } while (0)

int main(int argc, char **argv)
{
    char data_directory[1024];
    char options[1200];
    long thread_count = 4;
    long i;
    int ok = 1;
    pthread_t loggers[MAX_THREADS];
    pthread_t toggler;
    struct toggler_result toggled = {0, 0};
    StintStats before, after, restarted;
    uint64_t custom_events;

    if (argc > 4) {
        fprintf(stderr, "usage: %s [DATA_DIRECTORY [THREADS [EVENTS]]]\n", argv[0]);
        return 2;
    }
    if (argc > 2) {
        thread_count = strtol(argv[2], NULL, 10);
    }
    if (argc > 3) {
        events_per_thread = strtol(argv[3], NULL, 10);
    }
    if (thread_count < 1 || thread_count > MAX_THREADS || events_per_thread < 0) {
        fprintf(stderr, "multithreaded: THREADS must be 1..%d and EVENTS >= 0\n", MAX_THREADS);
        return 2;
    }
    if (argc > 1 && argv[1][0] != '\0') {
        snprintf(data_directory, sizeof data_directory, "%s", argv[1]);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(data_directory, sizeof data_directory, "%s/stint-multithreaded-XXXXXX",
                 tmp && tmp[0] == '/' ? tmp : "/tmp");
        if (!mkdtemp(data_directory)) {
            perror("multithreaded: mkdtemp");
            return 1;
        }
    }
    if (strpbrk(data_directory, "\"\\") != NULL) {
        fprintf(stderr, "multithreaded: keep quotes and backslashes out of the path\n");
        return 2;
    }
    snprintf(options, sizeof options, "{\"dataDirectory\":\"%s\",\"maxQueuedDatapoints\":10000000}",
             data_directory);
    printf("multithreaded: %ld threads x %ld events, data directory %s\n", thread_count,
           events_per_thread, data_directory);

    CALL(stint_set_session_listener(on_session_event, NULL));
    if (!initialize(options) || !get_stats(&before)) {
        return report(0);
    }
    CALL(stint_open_session());

    loggers_running = (int)thread_count;
    for (i = 0; i < thread_count; i++) {
        if (pthread_create(&loggers[i], NULL, log_events, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "multithreaded: pthread_create failed\n");
            return 1;
        }
    }
    if (pthread_create(&toggler, NULL, toggle_sessions, &toggled) != 0) {
        fprintf(stderr, "multithreaded: pthread_create failed\n");
        return 1;
    }
    pthread_mutex_lock(&mutex);
    go = 1;
    pthread_cond_broadcast(&started);
    pthread_mutex_unlock(&mutex);
    for (i = 0; i < thread_count; i++) {
        pthread_join(loggers[i], NULL);
    }
    pthread_join(toggler, NULL);

    if (!get_stats(&after)) {
        return report(0);
    }
    custom_events = (uint64_t)thread_count * (uint64_t)events_per_thread;
    printf("multithreaded: %ld open/close toggles, %ld user changes\n", toggled.toggles,
           toggled.user_changes);
    /* One session opened by main, then one more per user change (each ends the previous). */
    EXPECT_EQUAL("sessions_started", after.sessions_started, 1 + toggled.user_changes);
    EXPECT_EQUAL("sessions_ended", after.sessions_ended, toggled.user_changes);
    EXPECT_EQUAL("datapoints_recorded (custom + ss + se)", after.datapoints_recorded,
                 custom_events + after.sessions_started + after.sessions_ended);
    EXPECT_EQUAL("datapoints_pending", after.datapoints_pending,
                 before.datapoints_pending + after.datapoints_recorded);
    EXPECT_EQUAL("datapoints_dropped", after.datapoints_dropped, 0);

    CALL(stint_flush(10000));
    /* Shutdown waits for the listener to have seen everything recorded so far. */
    CALL(stint_shutdown(10000));
    pthread_mutex_lock(&mutex);
    EXPECT_EQUAL("listener: sessions started", listener_started, after.sessions_started);
    EXPECT_EQUAL("listener: sessions ended", listener_ended, after.sessions_ended);
    pthread_mutex_unlock(&mutex);

    /* A restart in the same process recovers every datapoint (nothing was delivered). */
    if (!initialize(options) || !get_stats(&restarted)) {
        return report(0);
    }
    EXPECT_EQUAL("after restart: datapoints_pending", restarted.datapoints_pending,
                 after.datapoints_pending);
    CALL(stint_shutdown(10000));
    CALL(stint_set_session_listener(NULL, NULL));
    return report(ok);
}
