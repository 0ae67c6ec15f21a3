/*
 * The header compiles alone (it is the first thing included) and twice in one unit as C99, and
 * every entry point called before stint_initialize() is a defined error, never a crash.
 * Built with -std=c99 -Wall -Wextra -Werror (-pedantic where the compiler has it).
 */
#include "stint.h"
#include "stint.h"

#include <stdio.h>
#include <string.h>

static int failures;

static void expect(int condition, const char *what)
{
    if (!condition) {
        fprintf(stderr, "header_c_check: FAILED: %s\n", what);
        failures++;
    }
}

#define EXPECT_NOT_INITIALIZED(call) \
    expect((call) == STINT_STATUS_NOT_INITIALIZED, #call " returns NOT_INITIALIZED")

int main(void)
{
    char buffer[STINT_SESSION_ID_BUFFER_LEN] = "untouched";
    StintStats stats;
    size_t length;

    memset(&stats, 0xAB, sizeof stats);
    expect(strcmp(stint_version(), STINT_VERSION_STRING) == 0, "stint_version() matches the header");
    EXPECT_NOT_INITIALIZED(stint_open_session());
    EXPECT_NOT_INITIALIZED(stint_close_session());
    EXPECT_NOT_INITIALIZED(stint_change_user("alice"));
    EXPECT_NOT_INITIALIZED(stint_log_custom_event("event", NULL));
    EXPECT_NOT_INITIALIZED(stint_request_immediate_data_flush());
    EXPECT_NOT_INITIALIZED(stint_flush(0));
    EXPECT_NOT_INITIALIZED(stint_shutdown(0));
    EXPECT_NOT_INITIALIZED(stint_get_session_id(buffer, sizeof buffer));
    expect(strcmp(buffer, "untouched") == 0, "the session id buffer is untouched on error");
    EXPECT_NOT_INITIALIZED(stint_get_stats(&stats));
    expect(stats.sessions_started == 0xABABABABABABABABull, "stats are untouched on error");
    length = stint_last_error_message(NULL, 0);
    expect(length > 0, "a failed call leaves a message");
    expect(stint_set_session_listener(NULL, NULL) == STINT_STATUS_OK,
           "the listener may be set before stint_initialize()");
    expect(stint_set_log_handler(NULL, NULL) == STINT_STATUS_OK,
           "the log handler may be set before stint_initialize()");
    expect(sizeof(StintStats) == 6 * sizeof(uint64_t), "StintStats is six uint64_t");
    if (failures == 0) {
        printf("header_c_check: OK (C, stint %s)\n", stint_version());
    }
    return failures == 0 ? 0 : 1;
}
