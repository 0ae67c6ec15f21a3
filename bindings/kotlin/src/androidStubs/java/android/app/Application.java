package android.app;

import android.content.ContextWrapper;
import android.os.Bundle;
import java.util.ArrayList;

/**
 * Test-only stub of {@code android.app.Application}: the lifecycle callback registry (kept in a
 * list, as the real one does) and the API 14 {@link ActivityLifecycleCallbacks}, with their real
 * signatures. Tests subclass it to give {@code getFilesDir()} and to see what is registered.
 */
public class Application extends ContextWrapper {
    private final ArrayList<ActivityLifecycleCallbacks> callbacks = new ArrayList<>();

    public Application() {
        super(null);
    }

    public void registerActivityLifecycleCallbacks(ActivityLifecycleCallbacks callback) {
        synchronized (callbacks) {
            callbacks.add(callback);
        }
    }

    public void unregisterActivityLifecycleCallbacks(ActivityLifecycleCallbacks callback) {
        synchronized (callbacks) {
            callbacks.remove(callback);
        }
    }

    public interface ActivityLifecycleCallbacks {
        void onActivityCreated(Activity activity, Bundle savedInstanceState);

        void onActivityStarted(Activity activity);

        void onActivityResumed(Activity activity);

        void onActivityPaused(Activity activity);

        void onActivityStopped(Activity activity);

        void onActivitySaveInstanceState(Activity activity, Bundle outState);

        void onActivityDestroyed(Activity activity);
    }
}
