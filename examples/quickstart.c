/*
 * Stint quickstart: the whole C API in one short program.
 *
 *   quickstart [DATA_DIRECTORY [BASE_URL]]
 *
 * DATA_DIRECTORY must be an absolute path; without it a fresh one is made with mkdtemp() under
 * $TMPDIR (or /tmp) and left behind so you can look at the journal. Without BASE_URL Stint only
 * stores datapoints and sends nothing. Exits 0 when every call succeeded.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stint.h"

static const char *status_name(StintStatus status)
{
    switch (status) {
    case STINT_STATUS_OK: return "OK";
    case STINT_STATUS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case STINT_STATUS_NOT_INITIALIZED: return "NOT_INITIALIZED";
    case STINT_STATUS_ALREADY_INITIALIZED: return "ALREADY_INITIALIZED";
    case STINT_STATUS_STORAGE_ERROR: return "STORAGE_ERROR";
    case STINT_STATUS_DATA_DIRECTORY_LOCKED: return "DATA_DIRECTORY_LOCKED";
    case STINT_STATUS_TIMEOUT: return "TIMEOUT";
    case STINT_STATUS_INTERNAL_ERROR: return "INTERNAL_ERROR";
    }
    return "UNKNOWN";
}

/* Prints what failed and why, then exits: a quickstart has nothing sensible to fall back to. */
static void check(StintStatus status, const char *call)
{
    char message[512];
    if (status == STINT_STATUS_OK) {
        return;
    }
    stint_last_error_message(message, sizeof message);
    fprintf(stderr, "quickstart: %s failed: %s (%d): %s\n", call, status_name(status),
            (int)status, message);
    exit(EXIT_FAILURE);
}

#define CHECK(call) check((call), #call)

/* Runs on a library thread, never under a library lock; stdio locks the stream itself. */
static void on_session_event(const StintSessionEvent *event, void *user_data)
{
    const char *program = (const char *)user_data;
    if (event->kind == STINT_SESSION_EVENT_KIND_STARTED) {
        printf("%s: session %s started for %s at %.3f\n", program, event->session_id,
               event->user_id ? event->user_id : "(anonymous)", event->start_time);
    } else {
        printf("%s: session %s ended for %s: %.3f s (from %.3f to %.3f)\n", program,
               event->session_id, event->user_id ? event->user_id : "(anonymous)",
               event->end_time - event->start_time, event->start_time, event->end_time);
    }
    fflush(stdout);
}

/* Appends `text` to `out` as JSON string content (without quotes); 0 if it did not fit. */
static int append_json_escaped(char *out, size_t out_len, const char *text)
{
    size_t used = strlen(out);
    for (; *text; text++) {
        unsigned char c = (unsigned char)*text;
        char escaped[8];
        if (c == '"' || c == '\\') {
            escaped[0] = '\\';
            escaped[1] = (char)c;
            escaped[2] = '\0';
        } else if (c < 0x20) {
            snprintf(escaped, sizeof escaped, "\\u%04x", c);
        } else {
            escaped[0] = (char)c;
            escaped[1] = '\0';
        }
        if (used + strlen(escaped) + 1 > out_len) {
            return 0;
        }
        strcpy(out + used, escaped);
        used += strlen(escaped);
    }
    return 1;
}

static void print_stats(const char *when)
{
    StintStats stats;
    CHECK(stint_get_stats(&stats));
    printf("stats %s: sessions started %llu, ended %llu; datapoints recorded %llu, pending %llu, "
           "delivered %llu, dropped %llu\n",
           when, (unsigned long long)stats.sessions_started,
           (unsigned long long)stats.sessions_ended,
           (unsigned long long)stats.datapoints_recorded,
           (unsigned long long)stats.datapoints_pending,
           (unsigned long long)stats.datapoints_delivered,
           (unsigned long long)stats.datapoints_dropped);
}

static char listener_name[] = "listener";

int main(int argc, char **argv)
{
    char data_directory[4096];
    char options[8192];
    char session_id[STINT_SESSION_ID_BUFFER_LEN];
    const char *base_url = argc > 2 && argv[2][0] != '\0' ? argv[2] : NULL;
    StintStatus status;

    if (argc > 3) {
        fprintf(stderr, "usage: %s [DATA_DIRECTORY [BASE_URL]]\n", argv[0]);
        return 2;
    }
    if (argc > 1 && argv[1][0] != '\0') {
        if (strlen(argv[1]) >= sizeof data_directory) {
            fprintf(stderr, "quickstart: data directory path too long\n");
            return 2;
        }
        strcpy(data_directory, argv[1]);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(data_directory, sizeof data_directory, "%s/stint-quickstart-XXXXXX",
                 tmp && tmp[0] == '/' ? tmp : "/tmp");
        if (!mkdtemp(data_directory)) {
            perror("quickstart: mkdtemp");
            return 1;
        }
    }

    printf("Stint %s (header %s), data directory %s, %s\n", stint_version(),
           STINT_VERSION_STRING, data_directory, base_url ? base_url : "store only (no baseUrl)");

    /* The listener may be set before stint_initialize(); user_data comes back untouched. */
    CHECK(stint_set_session_listener(on_session_event, listener_name));

    strcpy(options, "{\"sessionTimeoutInSeconds\":1800,\"logLevel\":\"info\",\"dataDirectory\":\"");
    if (!append_json_escaped(options, sizeof options, data_directory)) {
        fprintf(stderr, "quickstart: options too long\n");
        return 2;
    }
    strcat(options, "\"");
    if (base_url) {
        strcat(options, ",\"baseUrl\":\"");
        if (!append_json_escaped(options, sizeof options, base_url) ||
            strlen(options) + 3 > sizeof options) {
            fprintf(stderr, "quickstart: options too long\n");
            return 2;
        }
        strcat(options, "\"");
    }
    strcat(options, "}");
    CHECK(stint_initialize("quickstart-api-key", options));

    /* Everything else is an error with a message; here a deliberate one to show it. */
    status = stint_initialize("quickstart-api-key", options);
    if (status != STINT_STATUS_ALREADY_INITIALIZED) {
        fprintf(stderr, "quickstart: a second stint_initialize returned %s\n", status_name(status));
        return 1;
    }

    CHECK(stint_open_session());
    CHECK(stint_get_session_id(session_id, sizeof session_id));
    printf("session id: %s\n", session_id);

    CHECK(stint_log_custom_event("tutorial_begin", NULL));
    CHECK(stint_log_custom_event("level_up", "{\"level\":3,\"character\":\"wizard\"}"));

    /* A different user ends the anonymous session and starts one for alice. */
    CHECK(stint_change_user("alice"));
    CHECK(stint_get_session_id(session_id, sizeof session_id));
    printf("session id after change_user: %s\n", session_id);
    CHECK(stint_log_custom_event("purchase", "{\"item\":\"sword\",\"price\":4.99,\"gift\":false}"));

    print_stats("before flush");
    CHECK(stint_request_immediate_data_flush());
    CHECK(stint_flush(5000));

    /* The app goes to the background: no datapoint, the state is made durable. */
    CHECK(stint_close_session());
    print_stats("before shutdown");

    /* Shutdown records nothing: alice's session continues if the app comes back within 30 min. */
    CHECK(stint_shutdown(5000));

    status = stint_open_session();
    if (status != STINT_STATUS_NOT_INITIALIZED) {
        fprintf(stderr, "quickstart: stint_open_session after shutdown returned %s\n",
                status_name(status));
        return 1;
    }
    CHECK(stint_set_session_listener(NULL, NULL));
    printf("quickstart: OK\n");
    return 0;
}
