//! The per-user data home: where Stint keeps an app's data when `dataDirectory` is not given
//! (`<data home>/stint/<id>`, see `Options::data_directory_for`).

use std::path::PathBuf;

/// The data home of this platform, or why there is none (Android: the app must say where).
///
/// - Linux and other Unix: `$XDG_DATA_HOME`, else `$HOME/.local/share`;
/// - macOS and iOS: `$HOME/Library/Application Support` (on iOS, `$HOME` is the app's container);
/// - Windows: `%LOCALAPPDATA%` (per user, not roaming);
/// - Android: none. A native library cannot ask for the app's files directory (that takes the
///   JVM's `Context`), and `$HOME` is not the app's, so `dataDirectory` is required.
///
/// Where a variable is unset (a stripped-down service environment), the temp directory.
pub(crate) fn data_home() -> Result<PathBuf, String> {
    imp::data_home()
}

/// An absolute path from an environment variable (a relative one would depend on the working
/// directory of whatever process happens to initialize Stint).
#[allow(dead_code)] // not used on Android
fn absolute_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
}

#[cfg(target_os = "android")]
mod imp {
    use std::path::PathBuf;

    pub(super) fn data_home() -> Result<PathBuf, String> {
        Err(
            "dataDirectory is required on Android: pass an absolute path inside the app's \
             files directory (Context.getFilesDir() + \"/stint\")"
                .into(),
        )
    }
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
mod imp {
    use std::path::PathBuf;

    pub(super) fn data_home() -> Result<PathBuf, String> {
        Ok(super::absolute_var("HOME")
            .map(|home| home.join("Library/Application Support"))
            .unwrap_or_else(std::env::temp_dir))
    }
}

#[cfg(windows)]
mod imp {
    use std::path::PathBuf;

    pub(super) fn data_home() -> Result<PathBuf, String> {
        Ok(super::absolute_var("LOCALAPPDATA")
            .or_else(|| super::absolute_var("USERPROFILE").map(|p| p.join("AppData\\Local")))
            .unwrap_or_else(std::env::temp_dir))
    }
}

#[cfg(not(any(target_os = "android", target_os = "macos", target_os = "ios", windows)))]
mod imp {
    use std::path::PathBuf;

    pub(super) fn data_home() -> Result<PathBuf, String> {
        Ok(super::absolute_var("XDG_DATA_HOME")
            .or_else(|| super::absolute_var("HOME").map(|home| home.join(".local/share")))
            .unwrap_or_else(std::env::temp_dir))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(
        unix,
        not(any(target_os = "android", target_os = "macos", target_os = "ios"))
    ))]
    fn the_data_home_is_absolute() {
        assert!(super::data_home().unwrap().is_absolute());
    }
}
