//! The device and app context each session start carries: `app_version`, `os_name`,
//! `os_version`, `device_model`, `arch`, `locale`, whichever are known on this platform. Read
//! once at initialize; a session's datapoint stores it, so a session keeps the context it
//! started under even if it is delivered after an upgrade.

use serde_json::{Map, Value};

/// The context's members as JSON (`"app_version":"1.2","os_name":"Linux",...`, no braces), or
/// `None` if nothing is known.
pub fn members(app_version: Option<&str>) -> Option<String> {
    let mut map = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            map.insert(key.to_owned(), Value::String(value));
        }
    };
    put("app_version", app_version.map(str::to_owned));
    let os = os::facts();
    put("os_name", os.name);
    put("os_version", os.version);
    put("device_model", os.model);
    put("arch", Some(std::env::consts::ARCH.to_owned()));
    put("locale", os.locale);
    if map.is_empty() {
        return None;
    }
    let object = Value::Object(map).to_string();
    Some(object[1..object.len() - 1].to_owned())
}

/// What the operating system says about itself.
#[derive(Default)]
struct OsFacts {
    name: Option<String>,
    version: Option<String>,
    model: Option<String>,
    locale: Option<String>,
}

/// The POSIX locale from the environment (`LC_ALL`, `LC_MESSAGES`, `LANG`), as a BCP 47-like
/// tag: `en_US.UTF-8` gives `en-US`; "C" and "POSIX" say nothing.
#[cfg_attr(any(target_os = "windows", target_os = "android"), allow(dead_code))]
fn locale_from_env() -> Option<String> {
    let raw = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())?;
    locale_tag(&raw)
}

fn locale_tag(raw: &str) -> Option<String> {
    let tag = raw.split(['.', '@']).next()?.replace('_', "-");
    (!tag.is_empty() && tag != "C" && tag != "POSIX" && tag.len() <= 35).then_some(tag)
}

#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
#[allow(clippy::unnecessary_cast)] // c_char is i8 on some targets, u8 on others
fn c_text(bytes: &[libc::c_char]) -> Option<String> {
    let bytes: Vec<u8> = bytes
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok()
}

#[cfg(target_os = "linux")]
mod os {
    use super::*;

    pub(super) fn facts() -> OsFacts {
        // SAFETY: `uname` fills the zeroed struct we own; all-zero is a valid `utsname`.
        let uts = unsafe {
            let mut uts: libc::utsname = std::mem::zeroed();
            (libc::uname(&mut uts) == 0).then_some(uts)
        };
        OsFacts {
            name: uts.as_ref().and_then(|u| c_text(&u.sysname)),
            version: uts.as_ref().and_then(|u| c_text(&u.release)),
            model: std::fs::read_to_string("/sys/devices/virtual/dmi/id/product_name").ok(),
            locale: locale_from_env(),
        }
    }
}

#[cfg(target_os = "android")]
mod os {
    use super::*;

    /// A system property (`ro.build.version.release`, ...), through bionic's
    /// `__system_property_get`.
    fn property(name: &str) -> Option<String> {
        extern "C" {
            fn __system_property_get(name: *const libc::c_char, value: *mut libc::c_char) -> i32;
        }
        let name = std::ffi::CString::new(name).ok()?;
        // PROP_VALUE_MAX is 92 bytes with its NUL.
        let mut value = [0 as libc::c_char; 92];
        // SAFETY: a NUL-terminated name and a buffer of PROP_VALUE_MAX bytes, as bionic requires.
        let len = unsafe { __system_property_get(name.as_ptr(), value.as_mut_ptr()) };
        (len > 0).then(|| c_text(&value)).flatten()
    }

    pub(super) fn facts() -> OsFacts {
        OsFacts {
            name: Some("Android".into()),
            version: property("ro.build.version.release"),
            model: property("ro.product.model"),
            locale: property("persist.sys.locale").or_else(|| property("ro.product.locale")),
        }
    }
}

#[cfg(target_vendor = "apple")]
mod os {
    use super::*;

    fn sysctl_text(name: &str) -> Option<String> {
        let name = std::ffi::CString::new(name).ok()?;
        let mut buffer = [0 as libc::c_char; 256];
        let mut len = buffer.len();
        // SAFETY: a NUL-terminated name, a buffer and its length; sysctl writes at most `len`.
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                buffer.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0).then(|| c_text(&buffer)).flatten()
    }

    pub(super) fn facts() -> OsFacts {
        let name = if cfg!(target_os = "ios") {
            "iOS"
        } else {
            "macOS"
        };
        OsFacts {
            name: Some(name.into()),
            version: sysctl_text("kern.osproductversion"),
            model: sysctl_text("hw.machine"),
            locale: locale_from_env(),
        }
    }
}

#[cfg(windows)]
mod os {
    use super::*;

    /// `OSVERSIONINFOW`: RtlGetVersion reports the real version, where GetVersionEx reports
    /// what the app's manifest claims.
    #[repr(C)]
    struct OsVersionInfo {
        size: u32,
        major: u32,
        minor: u32,
        build: u32,
        platform: u32,
        service_pack: [u16; 128],
    }

    #[link(name = "ntdll")]
    extern "system" {
        fn RtlGetVersion(info: *mut OsVersionInfo) -> i32;
    }

    pub(super) fn facts() -> OsFacts {
        let mut info = OsVersionInfo {
            size: std::mem::size_of::<OsVersionInfo>() as u32,
            major: 0,
            minor: 0,
            build: 0,
            platform: 0,
            service_pack: [0; 128],
        };
        // SAFETY: `info` is a valid OSVERSIONINFOW with its size set, as RtlGetVersion requires.
        let ok = unsafe { RtlGetVersion(&mut info) } == 0;
        OsFacts {
            name: Some("Windows".into()),
            version: ok.then(|| format!("{}.{}.{}", info.major, info.minor, info.build)),
            model: None,
            locale: None,
        }
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    windows
)))]
mod os {
    use super::*;

    pub(super) fn facts() -> OsFacts {
        OsFacts {
            locale: locale_from_env(),
            ..OsFacts::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_holds_only_the_documented_keys_and_the_app_version() {
        let members = members(Some("3.1.4")).unwrap();
        let value: Value = serde_json::from_str(&format!("{{{members}}}")).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object["app_version"], "3.1.4");
        assert_eq!(object["arch"], std::env::consts::ARCH);
        for key in object.keys() {
            assert!(
                [
                    "app_version",
                    "os_name",
                    "os_version",
                    "device_model",
                    "arch",
                    "locale"
                ]
                .contains(&key.as_str()),
                "{key}"
            );
        }
        #[cfg(target_os = "linux")]
        {
            assert_eq!(object["os_name"], "Linux");
            assert!(object["os_version"].as_str().is_some_and(|v| !v.is_empty()));
        }
        let without: Value =
            serde_json::from_str(&format!("{{{}}}", super::members(None).unwrap())).unwrap();
        assert!(without.get("app_version").is_none());
    }

    #[test]
    fn locales_become_tags() {
        assert_eq!(locale_tag("en_US.UTF-8").as_deref(), Some("en-US"));
        assert_eq!(locale_tag("de_DE@euro").as_deref(), Some("de-DE"));
        assert_eq!(locale_tag("C"), None);
        assert_eq!(locale_tag("POSIX"), None);
        assert_eq!(locale_tag(""), None);
    }
}
