/*
 * The header compiles as C++ (inside extern "C", so the symbols link against libstint), alone
 * and twice in one unit. Built with -std=c++11 -Wall -Wextra -Werror and linked.
 */
#include "stint.h"
#include "stint.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

static_assert(std::is_same<decltype(&stint_initialize),
                           StintStatus (*)(const char *, const char *)>::value,
              "stint_initialize keeps its signature");
static_assert(std::is_same<decltype(&stint_last_error_message), size_t (*)(char *, size_t)>::value,
              "stint_last_error_message keeps its signature");
static_assert(sizeof(StintStats) == 6 * sizeof(uint64_t), "StintStats is six uint64_t");
static_assert(STINT_STATUS_INTERNAL_ERROR == 7, "status numbers are stable");
static_assert(STINT_SESSION_ID_BUFFER_LEN == 37, "a UUID and its NUL");

namespace {

int failures = 0;

void expect(bool condition, const char *what)
{
    if (!condition) {
        std::fprintf(stderr, "header_cpp_check: FAILED: %s\n", what);
        ++failures;
    }
}

// A C++ function with C linkage-compatible signature works as a listener; lambdas without
// captures convert too.
void on_session_event(const StintSessionEvent *event, void *user_data)
{
    static_cast<void>(event);
    static_cast<void>(user_data);
}

std::string last_error()
{
    std::string message(stint_last_error_message(nullptr, 0), '\0');
    stint_last_error_message(&message[0], message.size() + 1);
    return message;
}

}  // namespace

int main()
{
    expect(std::string(stint_version()) == STINT_VERSION_STRING, "stint_version() matches the header");
    expect(stint_open_session() == STINT_STATUS_NOT_INITIALIZED, "open before initialize");
    expect(!last_error().empty(), "a failed call leaves a message");
    expect(stint_initialize("key", "[]") == STINT_STATUS_INVALID_ARGUMENT, "options must be an object");
    expect(last_error().find("object") != std::string::npos, "the message says what was expected");

    StintSessionListener listener = on_session_event;
    expect(stint_set_session_listener(listener, nullptr) == STINT_STATUS_OK, "set a listener");
    StintLogHandler handler = [](StintLogLevel, const char *, void *) {};
    expect(stint_set_log_handler(handler, nullptr) == STINT_STATUS_OK, "set a log handler");
    expect(stint_set_session_listener(nullptr, nullptr) == STINT_STATUS_OK, "unset the listener");
    expect(stint_set_log_handler(nullptr, nullptr) == STINT_STATUS_OK, "unset the log handler");

    if (failures == 0) {
        std::printf("header_cpp_check: OK (C++, stint %s)\n", stint_version());
    }
    return failures == 0 ? 0 : 1;
}
