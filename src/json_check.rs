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
        error: None,
    };
    let parsed = parser.value(0).and_then(|()| {
        parser.skip_whitespace();
        if parser.at != parser.bytes.len() {
            return parser.fail("trailing characters after the value");
        }
        Ok(())
    });
    match parsed {
        Ok(()) => Ok(()),
        // `fail` and `too_deep` always say why before returning `Failed`.
        Err(Failed) => Err(parser.error.take().unwrap_or(JsonError::TooDeep)),
    }
}

/// A check failed; the parser holds why. (Zero-sized, so every step returns in a register: the
/// error's text and offset are written once, where it fails.)
struct Failed;

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    max_depth: usize,
    error: Option<JsonError>,
}

impl Parser<'_> {
    #[cold]
    fn fail<T>(&mut self, what: &'static str) -> Result<T, Failed> {
        self.error = Some(JsonError::Syntax { what, at: self.at });
        Err(Failed)
    }

    #[cold]
    fn too_deep<T>(&mut self) -> Result<T, Failed> {
        self.error = Some(JsonError::TooDeep);
        Err(Failed)
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Failed> {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return self.fail(what);
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<(), Failed> {
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

    /// A member's or an element's value: strings and numbers here, without the call into
    /// `value` (most properties are flat), the rest through it.
    #[inline(always)]
    fn element(&mut self, depth: usize) -> Result<(), Failed> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.value(depth),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Failed> {
        if depth > self.max_depth {
            return self.too_deep();
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
            self.element(depth)?;
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

    fn array(&mut self, depth: usize) -> Result<(), Failed> {
        if depth > self.max_depth {
            return self.too_deep();
        }
        self.at += 1; // [
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.element(depth)?;
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

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Failed> {
        if !self.bytes[self.at..].starts_with(word) {
            return self.fail("expected true, false or null");
        }
        self.at += word.len();
        Ok(())
    }

    /// A string; the text is already valid UTF-8, so only escapes and control bytes matter.
    #[inline]
    fn string(&mut self) -> Result<(), Failed> {
        self.at += 1; // "
        loop {
            self.at = plain_run_end(self.bytes, self.at);
            let Some(byte) = self.peek() else {
                return self.fail("unterminated string");
            };
            self.at += 1;
            match byte {
                b'"' => return Ok(()),
                b'\\' => self.escape()?,
                _ => return self.fail("control character in a string"),
            }
        }
    }

    // Out of line: `string`, on every key and value, stays small without it.
    #[inline(never)]
    fn escape(&mut self) -> Result<(), Failed> {
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

    fn hex4(&mut self) -> Result<u32, Failed> {
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

    fn number(&mut self) -> Result<(), Failed> {
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
        if !exact_integer || self.at - start > 300 {
            return self.finite(start);
        }
        Ok(())
    }

    /// Whether the number from `start` is a finite double. Out of line: most numbers need no
    /// such check, and its float reading would weigh on every number's path.
    #[cold]
    #[inline(never)]
    fn finite(&mut self, start: usize) -> Result<(), Failed> {
        let text = &self.bytes[start..self.at];
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
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }
}

/// Where the run of plain string bytes (no `"`, `\\` nor control byte) from `at` ends: 8 bytes
/// per step (the bit tricks of "Bit Twiddling Hacks", *determine if a word has a byte less
/// than n*), as a property's string is checked on every event.
#[inline]
fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    while let Some(word) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // The high bit of each byte that is below 0x20, or equal to `"` or `\\` (a byte above
        // the first such one may be flagged falsely by a borrow; the first is exact).
        let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
        let special = below(word, 0x20)
            | below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1);
        if special != 0 {
            return at + (special.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&byte) = bytes.get(at) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            break;
        }
        at += 1;
    }
    at
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

    #[test]
    fn the_word_at_a_time_scan_stops_where_the_byte_at_a_time_one_does() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            // Mostly plain bytes (ASCII and UTF-8's high ones), now and then a special one.
            let bytes: Vec<u8> = (0..len)
                .map(|i| match (seed >> (i * 2 % 60)) % 11 {
                    0 => {
                        [b'"', b'\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff][(seed >> 3) as usize % 8]
                    }
                    _ => b'a' + (i as u8 % 26),
                })
                .collect();
            let from = (seed >> 40) as usize % (len + 1);
            let reference = bytes[from..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .map_or(len, |p| from + p);
            assert_eq!(
                plain_run_end(&bytes, from),
                reference,
                "{bytes:?} from {from}"
            );
        }
    }

    /// The verdict, reason and offset for each input, as the checker gave them before its fast
    /// string scan and its zero-sized error: `stint_log_custom_event`'s messages quote both.
    #[test]
    fn verdicts_and_offsets_are_exactly_those_of_before() {
        use JsonError::{Syntax, TooDeep};
        let expected: &[(&str, Result<(), JsonError>)] = &[
            (
                "",
                Err(Syntax {
                    what: "unexpected end",
                    at: 0,
                }),
            ),
            (
                "{",
                Err(Syntax {
                    what: "expected a string key",
                    at: 1,
                }),
            ),
            (
                "}",
                Err(Syntax {
                    what: "expected a value",
                    at: 0,
                }),
            ),
            (
                "{\"a\"}",
                Err(Syntax {
                    what: "expected ':'",
                    at: 4,
                }),
            ),
            (
                "{\"a\":}",
                Err(Syntax {
                    what: "expected a value",
                    at: 5,
                }),
            ),
            (
                "{a:1}",
                Err(Syntax {
                    what: "expected a string key",
                    at: 1,
                }),
            ),
            (
                "{\"a\":1,}",
                Err(Syntax {
                    what: "expected a string key",
                    at: 7,
                }),
            ),
            (
                "[1,]",
                Err(Syntax {
                    what: "expected a value",
                    at: 3,
                }),
            ),
            (
                "[1 2]",
                Err(Syntax {
                    what: "expected ',' or ']'",
                    at: 3,
                }),
            ),
            (
                "01",
                Err(Syntax {
                    what: "trailing characters after the value",
                    at: 1,
                }),
            ),
            (
                "1.",
                Err(Syntax {
                    what: "invalid number",
                    at: 2,
                }),
            ),
            (
                ".5",
                Err(Syntax {
                    what: "expected a value",
                    at: 0,
                }),
            ),
            (
                "-",
                Err(Syntax {
                    what: "invalid number",
                    at: 1,
                }),
            ),
            (
                "1e",
                Err(Syntax {
                    what: "invalid number",
                    at: 2,
                }),
            ),
            (
                "+1",
                Err(Syntax {
                    what: "expected a value",
                    at: 0,
                }),
            ),
            (
                "tru",
                Err(Syntax {
                    what: "expected true, false or null",
                    at: 0,
                }),
            ),
            (
                "nul",
                Err(Syntax {
                    what: "expected true, false or null",
                    at: 0,
                }),
            ),
            (
                "{\"a\":1} x",
                Err(Syntax {
                    what: "trailing characters after the value",
                    at: 8,
                }),
            ),
            (
                "\"\\x\"",
                Err(Syntax {
                    what: "invalid escape",
                    at: 3,
                }),
            ),
            (
                "\"\\u12\"",
                Err(Syntax {
                    what: "short \\u escape",
                    at: 3,
                }),
            ),
            (
                "\"a\nb\"",
                Err(Syntax {
                    what: "control character in a string",
                    at: 3,
                }),
            ),
            (
                "'a'",
                Err(Syntax {
                    what: "expected a value",
                    at: 0,
                }),
            ),
            (
                "NaN",
                Err(Syntax {
                    what: "expected a value",
                    at: 0,
                }),
            ),
            (
                "Infinity",
                Err(Syntax {
                    what: "expected a value",
                    at: 0,
                }),
            ),
            (
                "1e999",
                Err(Syntax {
                    what: "number out of range",
                    at: 0,
                }),
            ),
            (
                "-1e400",
                Err(Syntax {
                    what: "number out of range",
                    at: 0,
                }),
            ),
            (
                "\"\\ud800\"",
                Err(Syntax {
                    what: "lone surrogate in a string",
                    at: 7,
                }),
            ),
            (
                "\"\\udc00\"",
                Err(Syntax {
                    what: "lone surrogate in a string",
                    at: 7,
                }),
            ),
            (
                "\"\\ud800\\u0041\"",
                Err(Syntax {
                    what: "lone surrogate in a string",
                    at: 13,
                }),
            ),
            (
                "\"abc",
                Err(Syntax {
                    what: "unterminated string",
                    at: 4,
                }),
            ),
            (
                "\"abc\\",
                Err(Syntax {
                    what: "unterminated escape",
                    at: 5,
                }),
            ),
            (
                "{\"k\":\"v\u{1}\"}",
                Err(Syntax {
                    what: "control character in a string",
                    at: 8,
                }),
            ),
            ("[[[[[1]]]]]", Err(TooDeep)),
            ("{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", Err(TooDeep)),
            (" {\"level\":3,\"score\":1200,\"mode\":\"hard\"} ", Ok(())),
            ("{\"a\" :\t1 ,\n\"b\":[ ]}", Ok(())),
            (
                "{\"a\":\"\\u00zz\"}",
                Err(Syntax {
                    what: "invalid \\u escape",
                    at: 8,
                }),
            ),
            (
                "{\"a\":-01}",
                Err(Syntax {
                    what: "expected ',' or '}'",
                    at: 7,
                }),
            ),
            (
                "{\"a\":1.e5}",
                Err(Syntax {
                    what: "invalid number",
                    at: 7,
                }),
            ),
            (
                "{\"a\":tRue}",
                Err(Syntax {
                    what: "expected true, false or null",
                    at: 5,
                }),
            ),
            (
                "{\"a\":\"é\\n\"}x",
                Err(Syntax {
                    what: "trailing characters after the value",
                    at: 12,
                }),
            ),
            (
                "{\"a\":1}}",
                Err(Syntax {
                    what: "trailing characters after the value",
                    at: 7,
                }),
            ),
            (
                "{\"a\":\"x\"",
                Err(Syntax {
                    what: "expected ',' or '}'",
                    at: 8,
                }),
            ),
            ("{\"a\":\"\\ud83d\\ude00\"}", Ok(())),
            (
                "{\"a\":\"\\ud83d\"}",
                Err(Syntax {
                    what: "lone surrogate in a string",
                    at: 12,
                }),
            ),
            (
                "{\"a\":\"\\ud83d\\u",
                Err(Syntax {
                    what: "short \\u escape",
                    at: 14,
                }),
            ),
            (
                "{\"a\":[1,2",
                Err(Syntax {
                    what: "expected ',' or ']'",
                    at: 9,
                }),
            ),
            (
                "{\"a\":1e+}",
                Err(Syntax {
                    what: "invalid number",
                    at: 8,
                }),
            ),
            ("\"\u{7f}\"", Ok(())),
            (
                "{\"a\"\0:1}",
                Err(Syntax {
                    what: "expected ':'",
                    at: 4,
                }),
            ),
            ("{\"\\\"\":1}", Ok(())),
            ("{\"a\":\"\\/\\b\\f\\r\\t\"}", Ok(())),
        ];
        for (text, verdict) in expected {
            assert_eq!(&check(text, 4), verdict, "{text:?}");
        }
    }
}
