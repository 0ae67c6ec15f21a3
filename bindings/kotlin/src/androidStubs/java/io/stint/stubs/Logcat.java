package io.stint.stubs;

import java.util.ArrayList;
import java.util.List;

/** What the stub {@code android.util.Log} was given, for the tests to read: "priority/tag: message". */
public final class Logcat {
    private static final List<String> lines = new ArrayList<>();

    private Logcat() {
    }

    public static synchronized int println(int priority, String tag, String msg) {
        lines.add(priority + "/" + tag + ": " + msg);
        return msg == null ? 0 : msg.length();
    }

    public static synchronized List<String> lines() {
        return new ArrayList<>(lines);
    }

    public static synchronized void clear() {
        lines.clear();
    }
}
