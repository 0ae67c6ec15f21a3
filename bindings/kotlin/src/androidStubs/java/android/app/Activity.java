package android.app;

import android.content.ContextWrapper;

/**
 * Test-only stub of {@code android.app.Activity}, only passed to the lifecycle callbacks. (The real
 * one extends ContextThemeWrapper, a ContextWrapper Stint never uses.)
 */
public class Activity extends ContextWrapper {
    public Activity() {
        super(null);
    }
}
