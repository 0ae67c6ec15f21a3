//! The options JSON of `stint_initialize`, validated into [`Options`].

use std::path::PathBuf;

use serde_json::Value;

use crate::dispatch::LogLevel;
use crate::error::Error;
use crate::platform;

/// The options of `stint_initialize` (README: "Options"), validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `sessionTimeoutInSeconds`.
    pub session_timeout_seconds: u64,
    /// `keepOpenWhileForeground`.
    pub keep_open_while_foreground: bool,
    /// `dataDirectory`. `None`: the per-app default under the platform's data home (see
    /// [`Options::data_directory_for`]); required on Android.
    pub data_directory: Option<PathBuf>,
    /// `baseUrl`, without a trailing slash; `None`: store only.
    pub base_url: Option<String>,
    /// `flushIntervalInSeconds`.
    pub flush_interval_seconds: u64,
    /// `maxQueuedDatapoints`.
    pub max_queued_datapoints: u64,
    /// `logLevel`.
    pub log_level: LogLevel,
    /// Tracking starts disabled on a data directory with no saved choice.
    pub require_consent: bool,
    /// The app's version, sent in each session start's context.
    pub app_version: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            session_timeout_seconds: 1800,
            keep_open_while_foreground: false,
            data_directory: None,
            base_url: None,
            flush_interval_seconds: 10,
            max_queued_datapoints: 100_000,
            log_level: LogLevel::Warn,
            require_consent: false,
            app_version: None,
        }
    }
}

/// Options JSON longer than this is refused before parsing.
pub const MAX_OPTIONS_BYTES: usize = 64 * 1024;

impl Options {
    /// Parses the options JSON; `None` means all defaults. The error names the key at fault.
    pub fn parse(json: Option<&str>) -> Result<Options, String> {
        let mut options = Options::default();
        let Some(json) = json else {
            return Ok(options);
        };
        let value: Value = serde_json::from_str(json).map_err(|e| not_json(&e))?;
        let Value::Object(map) = value else {
            return Err(format!(
                "options_json must be a JSON object, got {}",
                kind_of(&value)
            ));
        };
        // serde_json keeps the last of two equal keys without a word; which one the host meant
        // cannot be known, so the object is refused.
        if let Ok(FirstDuplicateKey(Some(key))) = serde_json::from_str(json) {
            return Err(format!(
                "options_json has the option `{}` more than once",
                shown_key(&key)
            ));
        }
        for (key, value) in &map {
            match key.as_str() {
                "sessionTimeoutInSeconds" => {
                    options.session_timeout_seconds = integer(key, value, 1, 31_536_000)?
                }
                "keepOpenWhileForeground" => {
                    options.keep_open_while_foreground = boolean(key, value)?
                }
                "dataDirectory" => options.data_directory = Some(data_directory(value)?),
                "baseUrl" => options.base_url = Some(base_url(value)?),
                "flushIntervalInSeconds" => {
                    options.flush_interval_seconds = integer(key, value, 1, 86_400)?
                }
                "maxQueuedDatapoints" => {
                    options.max_queued_datapoints = integer(key, value, 100, 10_000_000)?
                }
                "logLevel" => options.log_level = log_level(value)?,
                "requireConsent" => options.require_consent = boolean(key, value)?,
                "appVersion" => options.app_version = Some(app_version(value)?),
                _ => return Err(unknown_key(key)),
            }
        }
        Ok(options)
    }
}

const KEYS: [&str; 9] = [
    "sessionTimeoutInSeconds",
    "keepOpenWhileForeground",
    "dataDirectory",
    "baseUrl",
    "flushIntervalInSeconds",
    "maxQueuedDatapoints",
    "logLevel",
    "requireConsent",
    "appVersion",
];

/// The longest `appVersion`, in bytes.
pub const MAX_APP_VERSION_BYTES: usize = 64;

fn unknown_key(key: &str) -> String {
    format!(
        "unknown option `{}`; known options are {}",
        shown_key(key),
        KEYS.join(", ")
    )
}

/// A key as a message shows it: escaped, and cut after 64 bytes.
fn shown_key(key: &str) -> String {
    let end = prefix_end(key, 64);
    let more = if end < key.len() {
        format!("... ({} bytes)", key.len())
    } else {
        String::new()
    };
    format!("{}{more}", key[..end].escape_debug())
}

/// Options that do not parse: what was expected, and where it broke (serde's "expected ident at
/// line 1 column 2" alone does not say that an object was wanted).
fn not_json(error: &serde_json::Error) -> String {
    let reason = error.to_string();
    let location = format!(" at line {} column {}", error.line(), error.column());
    let reason = reason.strip_suffix(&location).unwrap_or(&reason);
    format!(
        "options_json must be a JSON object like {{\"logLevel\":\"info\"}}, and it is not valid \
         JSON: {reason}{location}"
    )
}

/// The first key an object holds twice, read from the text (a `Value` keeps only one of them).
struct FirstDuplicateKey(Option<String>);

impl<'de> serde::Deserialize<'de> for FirstDuplicateKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = FirstDuplicateKey;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FirstDuplicateKey, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut duplicate = None;
                // Read to the end: the parser checks that the whole object was consumed.
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if duplicate.is_none() && !seen.insert(key.clone()) {
                        duplicate = Some(key);
                    }
                }
                Ok(FirstDuplicateKey(duplicate))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

fn integer(key: &str, value: &Value, min: u64, max: u64) -> Result<u64, String> {
    match value.as_u64() {
        Some(n) if n < min => Err(format!("{key} must be an integer >= {min}, got {n}")),
        Some(n) if n > max => Err(format!("{key} must be an integer <= {max}, got {n}")),
        Some(n) => Ok(n),
        None if value.as_i64().is_some() => {
            Err(format!("{key} must be an integer >= {min}, got {value}"))
        }
        None => Err(format!(
            "{key} must be an integer from {min} to {max}, got {}",
            shown(value)
        )),
    }
}

fn boolean(key: &str, value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("{key} must be true or false, got {}", shown(value)))
}

fn data_directory(value: &Value) -> Result<PathBuf, String> {
    let path = value
        .as_str()
        .ok_or_else(|| format!("dataDirectory must be a string, got {}", shown(value)))?;
    if path.contains('\0') {
        return Err("dataDirectory must not contain NUL characters".into());
    }
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(format!(
            "dataDirectory must be an absolute path, got {}",
            shown_text(&path.display().to_string())
        ));
    }
    Ok(path)
}

fn base_url(value: &Value) -> Result<String, String> {
    let url = value
        .as_str()
        .ok_or_else(|| format!("baseUrl must be a string, got {}", shown(value)))?;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("baseUrl must start with https://, got {}", shown_text(url)))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("baseUrl must not contain credentials".into());
    }
    let host = host_of(authority);
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "baseUrl must be a URL like https://collector.example.com, got {}",
            shown_text(url)
        ));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(format!(
                "baseUrl must use https:// (http:// is allowed only for loopback hosts), got {}",
                shown_text(url)
            ))
        }
        _ => {
            return Err(format!(
                "baseUrl must start with https://, got {}",
                shown_text(url)
            ))
        }
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn host_of(authority: &str) -> &str {
    if let Some(bracketed) = authority.strip_prefix('[') {
        // Only a port may follow the bracket: `[::1]evil.com` has no host we can vouch for.
        return match bracketed.split_once(']') {
            Some((host, "")) => host,
            Some((host, port)) if port.starts_with(':') => host,
            _ => "",
        };
    }
    authority.split(':').next().unwrap_or("")
}

/// Plain HTTP is only ever sent to this machine.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn app_version(value: &Value) -> Result<String, String> {
    let version = value
        .as_str()
        .ok_or_else(|| format!("appVersion must be a string, got {}", shown(value)))?;
    if version.is_empty() || version.len() > MAX_APP_VERSION_BYTES {
        return Err(format!(
            "appVersion must be 1 to {MAX_APP_VERSION_BYTES} bytes, got {} bytes",
            version.len()
        ));
    }
    if version.chars().any(char::is_control) {
        return Err(format!(
            "appVersion must be printable (no control characters), got {}",
            shown_text(version)
        ));
    }
    Ok(version.to_owned())
}

fn log_level(value: &Value) -> Result<LogLevel, String> {
    value.as_str().and_then(LogLevel::from_name).ok_or_else(|| {
        format!(
            "logLevel must be one of \"off\", \"error\", \"warn\", \"info\", \"debug\", got {}",
            shown(value)
        )
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value as it appears in a message: short, so a hostile input cannot flood the log.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    let end = prefix_end(&text, 64);
    if end == text.len() {
        return text;
    }
    format!("{}... ({})", &text[..end], kind_of(value))
}

/// A path or URL as it appears in a message: quoted and escaped, whole up to 900 bytes of the
/// escaped form (the user needs to see which one), cut beyond that so a message stays under
/// 1 KB. The limit is on the escaped text: control characters escape to several bytes each.
pub(crate) fn shown_text(text: &str) -> String {
    let quoted = format!("{text:?}");
    let end = prefix_end(&quoted, 900);
    if end == quoted.len() {
        return quoted;
    }
    format!("{}... ({} bytes)", &quoted[..end], text.len())
}

/// How much of `text` a message shows: all of it up to `limit` bytes, else a little less.
fn prefix_end(text: &str, limit: usize) -> usize {
    if text.len() <= limit {
        return text.len();
    }
    let mut end = limit - 4;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

impl Options {
    /// The data directory this app uses: the explicit `dataDirectory`, or
    /// `<data home>/stint/<id>` where `<id>` is 16 hex digits of SHA-256 of the API key, so two
    /// apps with different keys never share a journal, and the key never appears in a path.
    /// The data home is the platform's (`platform::data_home`); where there is none (Android),
    /// `InvalidArgument` says that `dataDirectory` is required.
    pub fn data_directory_for(&self, api_key: &str) -> Result<PathBuf, Error> {
        match &self.data_directory {
            Some(path) => Ok(path.clone()),
            None => Ok(platform::data_home()
                .map_err(Error::InvalidArgument)?
                .join("stint")
                .join(app_directory_name(api_key))),
        }
    }
}

/// 16 lowercase hex digits of a one-way hash of the API key.
pub fn app_directory_name(api_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(api_key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An absolute path on the platform the tests run on.
    const ABSOLUTE: &str = if cfg!(windows) { r"C:\stint\x" } else { "/tmp/x" };

    fn json_string(text: &str) -> String {
        serde_json::to_string(text).unwrap()
    }

    fn err(json: &str) -> String {
        Options::parse(Some(json)).unwrap_err()
    }

    #[test]
    fn null_options_give_the_documented_defaults() {
        let o = Options::parse(None).unwrap();
        assert_eq!(o.session_timeout_seconds, 1800);
        assert!(!o.keep_open_while_foreground);
        assert_eq!(o.base_url, None);
        assert_eq!(o.flush_interval_seconds, 10);
        assert_eq!(o.max_queued_datapoints, 100_000);
        assert_eq!(o.log_level, LogLevel::Warn);
        assert_eq!(o.data_directory, None);
        assert_eq!(Options::parse(Some("{}")).unwrap(), o);
    }

    #[test]
    fn the_default_data_directory_is_per_api_key_and_hides_the_key() {
        let o = Options::parse(None).unwrap();
        let first = o.data_directory_for("key-of-app-one").unwrap();
        let second = o.data_directory_for("key-of-app-two").unwrap();
        assert_ne!(first, second);
        assert_eq!(first, o.data_directory_for("key-of-app-one").unwrap());
        for dir in [&first, &second] {
            let name = dir.file_name().unwrap().to_str().unwrap();
            assert_eq!(name.len(), 16, "{name}");
            assert!(
                name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{name}"
            );
            assert!(dir.parent().unwrap().ends_with("stint"));
            assert!(!dir.to_string_lossy().contains("key-of-app"));
        }
        // SHA-256("abc") starts ba7816bf8f01cfea.
        assert_eq!(app_directory_name("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    #[cfg(target_os = "android")]
    fn on_android_a_missing_data_directory_is_an_invalid_argument_that_says_so() {
        let o = Options::parse(None).unwrap();
        match o.data_directory_for("key") {
            Err(Error::InvalidArgument(message)) => {
                assert!(message.contains("dataDirectory is required on Android"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_explicit_data_directory_is_used_as_it_is() {
        let json = format!(r#"{{"dataDirectory":{}}}"#, json_string(ABSOLUTE));
        let o = Options::parse(Some(&json)).unwrap();
        assert_eq!(o.data_directory_for("any-key").unwrap(), PathBuf::from(ABSOLUTE));
    }

    #[test]
    fn a_long_value_full_of_control_characters_gives_a_short_message() {
        // Each \r escapes to two bytes: the cut is made on the escaped text.
        let url = format!("{}http://127.0.0.1:8080/", "\r".repeat(2000));
        let json = serde_json::json!({ "baseUrl": url }).to_string();
        let message = err(&json);
        assert!(message.len() <= 1024, "a {}-byte message", message.len());
        assert!(message.contains("baseUrl"), "{message}");
        assert!(message.ends_with(&format!("({} bytes)", url.len())), "{message}");
    }

    #[test]
    fn require_consent_and_app_version_are_read_and_checked() {
        let o = Options::parse(None).unwrap();
        assert!(!o.require_consent);
        assert_eq!(o.app_version, None);
        let o = Options::parse(Some(
            r#"{"requireConsent":true,"appVersion":"2.4.1 (381)"}"#,
        ))
        .unwrap();
        assert!(o.require_consent);
        assert_eq!(o.app_version.as_deref(), Some("2.4.1 (381)"));
        assert!(err(r#"{"requireConsent":1}"#).contains("requireConsent"));
        assert!(err(r#"{"appVersion":""}"#).contains("appVersion must be 1 to 64 bytes"));
        let long = format!(r#"{{"appVersion":"{}"}}"#, "9".repeat(65));
        assert!(err(&long).contains("appVersion must be 1 to 64 bytes"));
        assert!(Options::parse(Some(&long.replace(&"9".repeat(65), &"9".repeat(64)))).is_ok());
        assert!(err(r#"{"appVersion":"1.0\n"}"#).contains("control"));
        assert!(err(r#"{"appVersion":"1.0\u0007"}"#).contains("control"));
        assert!(err(r#"{"appVersion":3}"#).contains("appVersion must be a string"));
    }

    #[test]
    fn every_key_is_read() {
        let o = Options::parse(Some(
            &r#"{"sessionTimeoutInSeconds":2,"keepOpenWhileForeground":true,"dataDirectory":DIR,
                "baseUrl":"https://c.example.com/","flushIntervalInSeconds":3,
                "maxQueuedDatapoints":100,"logLevel":"debug"}"#
                .replace("DIR", &json_string(ABSOLUTE)),
        ))
        .unwrap();
        assert_eq!(o.session_timeout_seconds, 2);
        assert!(o.keep_open_while_foreground);
        assert_eq!(o.data_directory, Some(PathBuf::from(ABSOLUTE)));
        assert_eq!(o.base_url.as_deref(), Some("https://c.example.com"));
        assert_eq!(o.flush_interval_seconds, 3);
        assert_eq!(o.max_queued_datapoints, 100);
        assert_eq!(o.log_level, LogLevel::Debug);
    }

    #[test]
    fn timeout_zero_names_key_and_bound() {
        assert_eq!(
            err(r#"{"sessionTimeoutInSeconds":0}"#),
            "sessionTimeoutInSeconds must be an integer >= 1, got 0"
        );
    }

    #[test]
    fn ranges_are_inclusive_at_both_ends() {
        for ok in [
            r#"{"sessionTimeoutInSeconds":1}"#,
            r#"{"sessionTimeoutInSeconds":31536000}"#,
            r#"{"flushIntervalInSeconds":1}"#,
            r#"{"flushIntervalInSeconds":86400}"#,
            r#"{"maxQueuedDatapoints":100}"#,
            r#"{"maxQueuedDatapoints":10000000}"#,
        ] {
            assert!(Options::parse(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"sessionTimeoutInSeconds":31536001}"#,
            r#"{"sessionTimeoutInSeconds":-5}"#,
            r#"{"flushIntervalInSeconds":0}"#,
            r#"{"flushIntervalInSeconds":86401}"#,
            r#"{"maxQueuedDatapoints":99}"#,
            r#"{"maxQueuedDatapoints":10000001}"#,
            r#"{"maxQueuedDatapoints":1e30}"#,
        ] {
            let key = bad.split('"').nth(1).unwrap();
            assert!(err(bad).starts_with(key), "{bad}");
        }
    }

    #[test]
    fn wrong_types_are_refused_with_the_key() {
        assert!(err(r#"{"sessionTimeoutInSeconds":900.5}"#).contains("sessionTimeoutInSeconds"));
        assert!(err(r#"{"sessionTimeoutInSeconds":"900"}"#).contains("\"900\""));
        assert!(err(r#"{"keepOpenWhileForeground":1}"#).starts_with("keepOpenWhileForeground"));
        assert!(err(r#"{"logLevel":"verbose"}"#).starts_with("logLevel"));
        assert!(err(r#"{"dataDirectory":5}"#).starts_with("dataDirectory"));
    }

    #[test]
    fn unknown_keys_and_non_objects_are_refused() {
        assert!(err(r#"{"sessionTimeout":5}"#).contains("`sessionTimeout`"));
        assert!(err("[1]").contains("an array"));
        assert!(err("{").contains("not valid JSON"));
    }

    #[test]
    fn options_that_are_not_json_say_an_object_is_wanted_and_where_they_broke() {
        let message = err("logLevel=debug");
        assert!(message.contains("must be a JSON object"), "{message}");
        assert!(message.contains("line 1 column 1"), "{message}");
        let message = err("{\"logLevel\":\"info\",\n \"requireConsent\": yes}");
        assert!(message.contains("must be a JSON object"), "{message}");
        assert!(message.contains("line 2 column 20"), "{message}");
        // The location is said once, not twice.
        assert_eq!(message.matches("line 2").count(), 1, "{message}");
    }

    #[test]
    fn a_key_given_twice_is_refused_by_name() {
        let message = err(r#"{"logLevel":"info","sessionTimeoutInSeconds":5,"logLevel":"off"}"#);
        assert!(message.contains("`logLevel` more than once"), "{message}");
        // The same key spelled with an escape is the same key.
        let message = err(r#"{"appVersion":"1","\u0061ppVersion":"2"}"#);
        assert!(message.contains("`appVersion`"), "{message}");
        // Different keys are fine.
        assert!(Options::parse(Some(r#"{"logLevel":"info","requireConsent":true}"#)).is_ok());
        // A bad value of a duplicated key: either message names the key.
        let message = err(r#"{"logLevel":"loud","logLevel":"info"}"#);
        assert!(message.contains("logLevel"), "{message}");
    }

    #[test]
    fn data_directory_must_be_absolute() {
        assert!(err(r#"{"dataDirectory":"relative/dir"}"#).contains("absolute"));
        assert!(err(r#"{"dataDirectory":""}"#).contains("absolute"));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/x",
            "http://[::1]:9",
            "https://example.com",
        ] {
            assert!(
                Options::parse(Some(&format!(r#"{{"baseUrl":"{ok}"}}"#))).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "ftp://localhost",
            "https://",
            "example.com",
            "https://user:pw@example.com",
            "http://127.0.0.1.evil.com",
            "http://[::1]evil.com",
            "http://[::1",
        ] {
            assert!(
                err(&format!(r#"{{"baseUrl":"{bad}"}}"#)).starts_with("baseUrl"),
                "{bad}"
            );
        }
    }
}
