//! The options JSON of stint_initialize: never panics; what it accepts is within the documented
//! ranges (plain http:// only to loopback); what it refuses gets a short message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stint::options::{is_loopback, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    match Options::parse(Some(json)) {
        Ok(options) => {
            assert!((1..=31_536_000).contains(&options.session_timeout_seconds));
            assert!((1..=86_400).contains(&options.flush_interval_seconds));
            assert!((100..=10_000_000).contains(&options.max_queued_datapoints));
            assert!(options.data_directory.as_ref().is_none_or(|d| d.is_absolute()));
            if let Some(url) = &options.base_url {
                let (scheme, rest) = url.split_once("://").expect("a scheme");
                let scheme = scheme.to_ascii_lowercase();
                assert!(scheme == "https" || scheme == "http", "{url}");
                assert!(!rest.contains('@') || rest.find('@') > rest.find(['/', '?', '#']));
                if scheme == "http" {
                    let authority = rest.split(['/', '?', '#']).next().unwrap();
                    let host = match authority.strip_prefix('[') {
                        Some(bracketed) => bracketed.split(']').next().unwrap(),
                        None => authority.split(':').next().unwrap(),
                    };
                    assert!(is_loopback(host), "plain http to {host:?} in {url:?}");
                }
            }
        }
        Err(message) => {
            assert!(!message.is_empty());
            assert!(message.len() <= 1024, "a {}-byte message", message.len());
        }
    }
});
