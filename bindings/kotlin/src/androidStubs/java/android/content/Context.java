package android.content;

import java.io.File;

/**
 * Test-only stub of {@code android.content.Context} (Debian has no android.jar): the one method
 * Stint uses, with its real signature. Never shipped (scripts/android-aar.sh checks).
 */
public abstract class Context {
    public abstract File getFilesDir();
}
