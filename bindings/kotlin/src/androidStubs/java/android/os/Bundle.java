package android.os;

/** Test-only stub of {@code android.os.Bundle}, only passed to the lifecycle callbacks. */
public final class Bundle {
    public Bundle() {
    }
}
