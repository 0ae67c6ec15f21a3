//! Limits on what hosts pass in, checked before anything changes.

use crate::error::Error;
use crate::json_check::JsonError;

/// The longest API key, in bytes.
pub const MAX_API_KEY_BYTES: usize = 256;
/// The longest user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 997;
/// The longest custom event name, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 255;
/// The longest properties JSON, in bytes.
pub const MAX_PROPERTIES_BYTES: usize = 50 * 1024;
/// Deeper properties are refused: they are never what an analytics event needs.
pub const MAX_PROPERTIES_DEPTH: usize = 32;

/// A user id that passed its checks.
#[derive(Clone, Copy, Debug)]
pub struct UserId<'a>(&'a str);

impl<'a> UserId<'a> {
    /// Checks `user`: 1 to `MAX_USER_ID_BYTES` bytes.
    pub fn new(user: &'a str) -> Result<UserId<'a>, Error> {
        user_id(user)?;
        Ok(UserId(user))
    }

    /// The user id.
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// A custom event whose name and properties passed their checks (once: the properties are
/// parsed here and nowhere else).
#[derive(Clone, Copy, Debug)]
pub struct CustomEvent<'a> {
    pub(crate) name: &'a str,
    pub(crate) properties: Option<&'a str>,
}

impl<'a> CustomEvent<'a> {
    /// Checks `name` (1 to `MAX_EVENT_NAME_BYTES` bytes) and `properties` (one JSON object of
    /// at most `MAX_PROPERTIES_BYTES`, `MAX_PROPERTIES_DEPTH` deep).
    pub fn new(name: &'a str, properties: Option<&'a str>) -> Result<CustomEvent<'a>, Error> {
        event_name(name)?;
        if let Some(properties) = properties {
            self::properties(properties)?;
        }
        Ok(CustomEvent { name, properties })
    }
}

/// Checks an API key: 1 to `MAX_API_KEY_BYTES` bytes, no control characters.
pub fn api_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_API_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "api_key must be 1 to {MAX_API_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        // The key itself is never echoed.
        return Err(Error::InvalidArgument(
            "api_key must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Checks a user id.
pub fn user_id(user: &str) -> Result<(), Error> {
    bytes_in_range("user_id", user, MAX_USER_ID_BYTES)
}

/// Checks a custom event name.
pub fn event_name(name: &str) -> Result<(), Error> {
    bytes_in_range("name", name, MAX_EVENT_NAME_BYTES)
}

/// Properties must be one JSON object; it is stored as given.
pub fn properties(json: &str) -> Result<(), Error> {
    if json.len() > MAX_PROPERTIES_BYTES {
        return Err(Error::InvalidArgument(format!(
            "properties_json must be at most {MAX_PROPERTIES_BYTES} bytes, got {}",
            json.len()
        )));
    }
    // The usual object starts at once; `trim_start` decodes chars (Unicode white space).
    if !json.starts_with('{') && !json.trim_start().starts_with('{') {
        return Err(Error::InvalidArgument(
            "properties_json must be a JSON object like {\"level\":3}".into(),
        ));
    }
    match crate::json_check::check(json, MAX_PROPERTIES_DEPTH) {
        Ok(()) => Ok(()),
        Err(JsonError::TooDeep) => Err(Error::InvalidArgument(format!(
            "properties_json is nested deeper than {MAX_PROPERTIES_DEPTH} levels"
        ))),
        Err(JsonError::Syntax { what, at }) => Err(Error::InvalidArgument(format!(
            "properties_json is not valid JSON: {what} at byte {at}"
        ))),
    }
}

fn bytes_in_range(what: &str, text: &str, max: usize) -> Result<(), Error> {
    if text.is_empty() || text.len() > max {
        return Err(Error::InvalidArgument(format!(
            "{what} must be 1 to {max} bytes of UTF-8, got {} bytes",
            text.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive() {
        assert!(user_id(&"u".repeat(997)).is_ok());
        assert!(user_id(&"u".repeat(998)).is_err());
        assert!(user_id("").is_err());
        assert!(event_name(&"n".repeat(255)).is_ok());
        assert!(event_name(&"n".repeat(256)).is_err());
        assert!(api_key(&"k".repeat(256)).is_ok());
        assert!(api_key(&"k".repeat(257)).is_err());
        assert!(api_key("").is_err());
    }

    #[test]
    fn api_key_messages_never_echo_the_key() {
        let error = api_key("secret\nkey").unwrap_err().to_string();
        assert!(!error.contains("secret"));
    }

    #[test]
    fn properties_must_be_a_json_object() {
        assert!(properties(r#"{"level":3,"tags":["a"]}"#).is_ok());
        assert!(properties(" {} ").is_ok());
        for bad in [
            "[1,2]",
            "3",
            "\"x\"",
            "{",
            "{} x",
            "null",
            "",
            r#"{"a":1e999}"#,
            r#"{"a":[-1e400]}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"\udc00":1}"#,
        ] {
            assert!(properties(bad).is_err(), "{bad}");
        }
        let deep = "{\"a\":".repeat(200) + "1" + &"}".repeat(200);
        assert!(properties(&deep).is_err());
        let nested_ok = "{\"a\":".repeat(31) + "[\"}}]]\"]" + &"}".repeat(31);
        assert!(properties(&nested_ok).is_ok());
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_PROPERTIES_BYTES));
        assert!(properties(&big)
            .unwrap_err()
            .to_string()
            .contains("at most"));
    }
}
