package android.os;

import io.stint.stubs.MainThread;

/**
 * Test-only stub of {@code android.os.Handler}, with the real signatures of the methods Stint
 * uses: posts go to {@link MainThread}, a queue on a virtual clock that the tests advance.
 */
public class Handler {
    private final Looper looper;

    public Handler(Looper looper) {
        if (looper == null) throw new NullPointerException("looper");
        this.looper = looper;
    }

    public final boolean postDelayed(Runnable r, long delayMillis) {
        return MainThread.post(this, r, delayMillis);
    }

    public final void removeCallbacks(Runnable r) {
        MainThread.remove(this, r);
    }

    public final Looper getLooper() {
        return looper;
    }
}
