//! The URL scope matcher (which links a store may fetch, spec/PROTOCOL.md §7.3), checked against
//! its rule read off the `url` crate's parse of the pattern: a matched URL has the scope's scheme;
//! under a scope with a host, also the same host and port, no user name or password, and a path
//! strictly below the scope's path. And the converse that makes it useful: a URL one segment
//! below a scope with a host is matched.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge::protocol::UrlScope;
use url::Url;

/// The input: scope pattern, URL and a path segment, separated by 0 bytes (a plain layout, so
/// fuzz/seed_corpus.py can write seeds from spec/vectors' links).
struct Input {
    pattern: String,
    url: String,
    segment: String,
}

fn parse(input: &[u8]) -> Input {
    let mut parts = input.splitn(3, |&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    let mut next = || parts.next().unwrap_or_default();
    Input { pattern: next(), url: next(), segment: next() }
}

fuzz_target!(|input: &[u8]| {
    natsbridge_fuzz::init();
    let input = parse(input);
    let Ok(scope) = UrlScope::parse(&input.pattern) else { return };
    let pattern = Url::parse(input.pattern.trim()).expect("UrlScope::parse accepted it");
    let host = pattern.host_str().filter(|h| !h.is_empty());
    if scope.matches(&input.url) {
        let url = Url::parse(&input.url).expect("a matched URL parses");
        assert_eq!(url.scheme(), pattern.scheme());
        if let Some(host) = host {
            assert!(url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host)), "host of {url}");
            assert_eq!(url.port_or_known_default(), pattern.port_or_known_default(), "port of {url}");
            assert!(url.username().is_empty() && url.password().is_none(), "credentials in {url}");
            let base = pattern.path().trim_end_matches('/');
            let rest = url.path().strip_prefix(base).and_then(|r| r.strip_prefix('/'));
            assert!(rest.is_some_and(|r| !r.is_empty()), "{url} is not below {base:?}");
        }
    }
    if host.is_none() || !pattern.username().is_empty() || pattern.password().is_some() {
        return;
    }
    let mut below = pattern.clone();
    let Ok(mut segments) = below.path_segments_mut() else { return };
    segments.pop_if_empty().push(&input.segment);
    drop(segments);
    // `push` drops "." and "..", and tabs and newlines; a segment that reads back as something
    // else ("%2e" is a dot segment) is not one level below either.
    let last = below.path_segments().and_then(|mut s| s.next_back()).unwrap_or_default();
    let added = below.path().len() > pattern.path().len() && !last.is_empty();
    if !added || Url::parse(below.as_str()).as_ref() != Ok(&below) {
        return;
    }
    assert!(scope.matches(below.as_str()), "{} does not match {below}", input.pattern);
});
