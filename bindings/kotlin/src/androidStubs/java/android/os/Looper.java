package android.os;

/** Test-only stub of {@code android.os.Looper}: the main looper, which {@link Handler} runs on. */
public final class Looper {
    private static final Looper MAIN = new Looper();

    private Looper() {
    }

    public static Looper getMainLooper() {
        return MAIN;
    }
}
