//! Checks that text is one JSON value, in a single pass without building anything: the custom
//! event path validates properties on every call, and this is several times cheaper than a
//! serde parse. It refuses what the collector's JSON parser would: numbers that overflow to
//! infinity (`1e999`) and lone UTF-16 surrogates (`"\ud800"`), so a datapoint accepted here is
//! never rejected (and dropped) later.

/// Why a text is not acceptable JSON, and where.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonError {
    Syntax { what: &'static str, at: usize },
    TooDeep,
}

/// Checks that `text` is a single JSON value nested at most `max_depth` deep.
pub fn check(text: &str, max_depth: usize) -> Result<(), JsonError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        at: 0,
        max_depth,
    };
    parser.value(0)?;
    parser.skip_whitespace();
    if parser.at != parser.bytes.len() {
        return parser.fail("trailing characters after the value");
    }
    Ok(())
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, what: &'static str) -> Result<T, JsonError> {
        Err(JsonError::Syntax { what, at: self.at })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return self.fail(what);
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => self.fail("expected a value"),
            None => self.fail("unexpected end"),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > self.max_depth {
            return Err(JsonError::TooDeep);
        }
        self.at += 1; // {
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return self.fail("expected a string key");
            }
            self.string()?;
            self.expect(b':', "expected ':'")?;
            self.value(depth)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return self.fail("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > self.max_depth {
            return Err(JsonError::TooDeep);
        }
        self.at += 1; // [
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return self.fail("expected ',' or ']'"),
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonError> {
        if !self.bytes[self.at..].starts_with(word) {
            return self.fail("expected true, false or null");
        }
        self.at += word.len();
        Ok(())
    }

    /// A string; the text is already valid UTF-8, so only escapes and control bytes matter.
    fn string(&mut self) -> Result<(), JsonError> {
        self.at += 1; // "
        loop {
            let Some(byte) = self.peek() else {
                return self.fail("unterminated string");
            };
            self.at += 1;
            match byte {
                b'"' => return Ok(()),
                b'\\' => self.escape()?,
                0..=0x1f => return self.fail("control character in a string"),
                _ => {}
            }
        }
    }

    fn escape(&mut self) -> Result<(), JsonError> {
        let Some(byte) = self.peek() else {
            return self.fail("unterminated escape");
        };
        self.at += 1;
        match byte {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xd800..=0xdbff => {
                        // A high surrogate must be followed by an escaped low one.
                        if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                            return self.fail("lone surrogate in a string");
                        }
                        self.at += 2;
                        match self.hex4()? {
                            0xdc00..=0xdfff => Ok(()),
                            _ => self.fail("lone surrogate in a string"),
                        }
                    }
                    0xdc00..=0xdfff => self.fail("lone surrogate in a string"),
                    _ => Ok(()),
                }
            }
            _ => self.fail("invalid escape"),
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(digits) = self.bytes.get(self.at..self.at + 4) else {
            return self.fail("short \\u escape");
        };
        let mut value = 0;
        for &digit in digits {
            let nibble = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                b'A'..=b'F' => digit - b'A' + 10,
                _ => return self.fail("invalid \\u escape"),
            };
            value = value * 16 + nibble as u32;
        }
        self.at += 4;
        Ok(value)
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.fail("invalid number"),
        }
        let mut exact_integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.fail("invalid number");
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            exact_integer = false;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.fail("invalid number");
            }
            self.digits();
        }
        // Only an exponent or hundreds of digits can overflow a double.
        let text = &self.bytes[start..self.at];
        if !exact_integer || text.len() > 300 {
            // serde_json's own reading, as the collector's: it refuses what overflows (and
            // `str::parse::<f64>` would link a second float parser into the library).
            let finite = std::str::from_utf8(text)
                .ok()
                .and_then(|t| serde_json::from_str::<f64>(t).ok())
                .is_some_and(f64::is_finite);
            if !finite {
                self.at = start;
                return self.fail("number out of range");
            }
        }
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> bool {
        check(text, 32).is_ok()
    }

    #[test]
    fn accepts_json_values() {
        for text in [
            "{}",
            " { \"a\" : [1, -2.5e3, 0.0, true, false, null, \"x\\n\\u00e9\\ud83d\\ude00\"] } ",
            "{\"nested\":{\"deeper\":[[]]}}",
            "[]",
            "0",
            "-0.1E+2",
            "\"é😀\"",
            "{\"big\":123456789012345678901234567890}",
        ] {
            assert!(ok(text), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        for text in [
            "",
            "{",
            "}",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "{\"a\":1} x",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\nb\"",
            "'a'",
            "NaN",
            "Infinity",
        ] {
            assert!(!ok(text), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_the_collector_would_reject() {
        for text in [
            "1e999",
            "-1e400",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
        ] {
            assert!(!ok(text), "{text:?}");
        }
        assert!(ok("1e308"));
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        let samples = [
            "{\"a\":[1,{\"b\":null}]}",
            "[1,2",
            "{\"k\":\"v\\\"\"}",
            "{\"k\":-0}",
            "{\"k\":1E5}",
            "[\"\\/\"]",
            "{\"a\":[true,false]}",
            "[-]",
            "{\"\":0}",
        ];
        // Near the largest double, where a reader's rounding decides what overflows.
        let long = [
            "1".to_owned() + &"0".repeat(308),
            "1".to_owned() + &"0".repeat(309),
        ];
        let edges = [
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "-1.797693134862316e308",
            "1.8e308",
            "1e-400",
            &long[0],
            &long[1],
        ];
        for text in samples.into_iter().chain(edges) {
            let serde = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(ok(text), serde, "{text}");
        }
    }

    #[test]
    fn depth_is_limited() {
        let at_limit = "[".repeat(32) + &"]".repeat(32);
        assert!(ok(&at_limit));
        let beyond = "[".repeat(33) + &"]".repeat(33);
        assert_eq!(check(&beyond, 32), Err(JsonError::TooDeep));
        let hostile = "[".repeat(100_000);
        assert_eq!(check(&hostile, 32), Err(JsonError::TooDeep));
    }
}
