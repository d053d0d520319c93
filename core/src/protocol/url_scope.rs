//! The one URL matcher: which link URLs a store (or a host's download handler) serves. A receiver
//! fetches a link only from a store whose scope matches it (spec/PROTOCOL.md §7.3).

use crate::error::{Error, Result};

/// A set of URLs: `scheme://host[:port][/path]` is that origin under that path; `scheme:` is every
/// URL of the scheme (for custom schemes without a host, `mem:`, `s3:`, and `nats-obj:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlScope {
    scheme: String,
    /// None: any URL of the scheme.
    host: Option<String>,
    port: Option<u16>,
    /// Without its trailing slash; "" for the root.
    path: String,
}

impl UrlScope {
    /// INVALID_ARGUMENT when `pattern` is not a URL (a configuration mistake).
    pub fn parse(pattern: &str) -> Result<UrlScope> {
        let u = url::Url::parse(pattern.trim())
            .map_err(|e| Error::invalid_argument(format!("allowed origin {pattern:?} is not a URL: {e}")))?;
        if u.query().is_some() || u.fragment().is_some() {
            return Err(Error::invalid_argument(format!(
                "allowed origin {pattern:?} has a query or fragment; give scheme://host[:port][/path]"
            )));
        }
        let host = u.host_str().filter(|h| !h.is_empty()).map(str::to_ascii_lowercase);
        let path = if host.is_some() { u.path().trim_end_matches('/').to_owned() } else { String::new() };
        Ok(UrlScope { scheme: u.scheme().to_owned(), port: u.port_or_known_default(), host, path })
    }

    /// Every URL of `scheme` (without the colon).
    pub fn scheme(scheme: &str) -> UrlScope {
        UrlScope { scheme: scheme.to_ascii_lowercase(), host: None, port: None, path: String::new() }
    }

    /// The URLs under `base` (an already checked http(s) URL) followed by `prefix` (e.g. "/file").
    pub fn under(base: &url::Url, prefix: &str) -> UrlScope {
        let path = format!("{}{}", base.path().trim_end_matches('/'), prefix.trim_end_matches('/'));
        UrlScope {
            scheme: base.scheme().to_owned(),
            host: base.host_str().map(str::to_ascii_lowercase),
            port: base.port_or_known_default(),
            path,
        }
    }

    /// The scopes of a download handler: the origin of `fileserver_url` (when given) and each of
    /// `origins`. May be empty; the caller says which option to set.
    pub fn for_handler<'a>(
        fileserver_url: Option<&'a str>,
        origins: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<UrlScope>> {
        let server = fileserver_url.filter(|u| !u.trim().is_empty());
        server.into_iter().chain(origins.into_iter().map(String::as_str)).map(UrlScope::parse).collect()
    }

    /// Whether `url` is in the scope: same scheme; for a scope with a host, the same host and
    /// port, no user name or password, and a path strictly below the scope's path
    /// (`/store/x` is under `/store`, `/storefront/x` and `/store/` are not).
    pub fn matches(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else { return false };
        if url.scheme() != self.scheme {
            return false;
        }
        let Some(host) = &self.host else { return true };
        url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
            && url.port_or_known_default() == self.port
            && url.username().is_empty()
            && url.password().is_none()
            && url
                .path()
                .strip_prefix(&self.path)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| !rest.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::UrlScope;
    use crate::error::ErrorCode;

    #[test]
    fn scopes_match_origin_path_and_scheme() {
        let under = UrlScope::parse("https://Files.example:8443/store/").unwrap();
        assert!(under.matches("https://files.example:8443/store/a.bin"));
        assert!(!under.matches("https://files.example:8443/storefront/a.bin"));
        assert!(!under.matches("https://files.example:8443/store/"));
        assert!(!under.matches("https://files.example/store/a.bin"));
        assert!(!under.matches("http://files.example:8443/store/a.bin"));
        assert!(!under.matches("https://user:pw@files.example:8443/store/a.bin"));
        assert!(!under.matches("https://files.example:8443/store/../etc/x"));
        let root = UrlScope::parse("https://files.example").unwrap();
        assert!(root.matches("https://files.example:443/x"));
        assert!(!root.matches("https://files.example/"));
        let scheme = UrlScope::parse("mem:").unwrap();
        assert!(scheme.matches("mem://bucket/key") && scheme.matches("mem:key"));
        assert!(!scheme.matches("memo://bucket/key") && !scheme.matches("not a url"));
        assert!(UrlScope::scheme("nats-obj").matches("nats-obj://natsbridge/abc"));
        let base = url::Url::parse("http://127.0.0.1:8080/plik/").unwrap();
        let plik = UrlScope::under(&base, "/file");
        assert!(plik.matches("http://127.0.0.1:8080/plik/file/u/f/name.bin"));
        assert!(!plik.matches("http://127.0.0.1:8080/plik/upload/u"));
    }

    #[test]
    fn bad_patterns_are_invalid_arguments() {
        for bad in ["no scheme", "http://h/p?sig=1", ""] {
            assert_eq!(UrlScope::parse(bad).unwrap_err().code, ErrorCode::InvalidArgument, "{bad}");
        }
        assert_eq!(UrlScope::for_handler(Some(" "), &["mem:".to_owned()]).unwrap().len(), 1);
    }
}
