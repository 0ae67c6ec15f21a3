package io.stint.stubs;

import android.os.Handler;
import java.util.ArrayList;
import java.util.List;

/**
 * The main thread's message queue for the JVM tests, on a virtual clock: the stub
 * {@link Handler} posts here, and a test runs what falls due with {@link #advanceBy}, on its own
 * thread, so no test sleeps to see a delay pass.
 */
public final class MainThread {
    private static final class Task {
        final Handler handler;
        final Runnable runnable;
        final long due;
        final long order;

        Task(Handler handler, Runnable runnable, long due, long order) {
            this.handler = handler;
            this.runnable = runnable;
            this.due = due;
            this.order = order;
        }
    }

    private static final List<Task> queue = new ArrayList<>();
    private static long now;
    private static long posted;

    private MainThread() {
    }

    public static synchronized boolean post(Handler handler, Runnable runnable, long delayMillis) {
        if (runnable == null) throw new NullPointerException("runnable");
        queue.add(new Task(handler, runnable, now + Math.max(0, delayMillis), posted++));
        return true;
    }

    public static synchronized void remove(Handler handler, Runnable runnable) {
        queue.removeIf(task -> task.handler == handler && task.runnable == runnable);
    }

    /** How many posted tasks have not run yet. */
    public static synchronized int pending() {
        return queue.size();
    }

    /** The virtual time, in milliseconds since the last {@link #reset}. */
    public static synchronized long now() {
        return now;
    }

    /** Moves the clock on by {@code millis}, running each task that falls due, in due order. */
    public static void advanceBy(long millis) {
        long target;
        synchronized (MainThread.class) {
            target = now + millis;
        }
        while (true) {
            Task next = null;
            synchronized (MainThread.class) {
                for (Task task : queue) {
                    if (task.due <= target && (next == null || task.due < next.due
                            || (task.due == next.due && task.order < next.order))) {
                        next = task;
                    }
                }
                if (next == null) {
                    now = target;
                    return;
                }
                queue.remove(next);
                now = next.due;
            }
            next.runnable.run(); // outside the lock: a task may post again
        }
    }

    /** Drops every task and sets the clock back to 0. */
    public static synchronized void reset() {
        queue.clear();
        now = 0;
    }
}
