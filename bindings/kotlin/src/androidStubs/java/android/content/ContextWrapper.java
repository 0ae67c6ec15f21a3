package android.content;

import java.io.File;

/** Test-only stub of {@code android.content.ContextWrapper}: delegates to its base, as the real one does. */
public class ContextWrapper extends Context {
    private final Context base;

    public ContextWrapper(Context base) {
        this.base = base;
    }

    @Override
    public File getFilesDir() {
        return base.getFilesDir();
    }
}
