//! RFC 9110 conditional requests and byte ranges for a committed file: what
//! to answer given the request's `If-*` and `Range` headers and the file's
//! validators. Pure: the handler does the I/O.
//!
//! The rules, in the RFC's order (section 13.2.2):
//! 1. `If-Match` (strong comparison; `*` matches): no match is 412;
//!    otherwise, without `If-Match`, `If-Unmodified-Since`: modified later is 412;
//! 2. `If-None-Match` (weak comparison): a match is 304; otherwise, without
//!    `If-None-Match`, `If-Modified-Since`: not modified since is 304;
//! 3. `If-Range` (a strong ETag, or the exact `Last-Modified`): a mismatch
//!    means the `Range` is ignored and the whole file is sent;
//! 4. `Range` (section 14.2): a header that does not parse, uses a unit other
//!    than `bytes`, or has a range whose last byte comes before its first is
//!    ignored (200 with the whole file). Several ranges are also answered
//!    with the whole file, never `multipart/byteranges`. A single range that
//!    starts past the end is 416 with `Content-Range: bytes */LEN`.
//!
//! Dates that do not parse are ignored, as the RFC says.

use std::ops::RangeInclusive;
use std::time::SystemTime;

use axum::http::{HeaderMap, header};

/// What identifies the file's current content.
#[derive(Clone, Debug)]
pub struct Validators<'a> {
    /// The opaque tag without quotes (the file's sha256).
    pub etag: &'a str,
    /// Whole seconds: HTTP dates have no finer resolution.
    pub last_modified: Option<SystemTime>,
    pub len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    NotModified,
    PreconditionFailed,
    Full,
    Partial(RangeInclusive<u64>),
    Unsatisfiable,
}

/// Decides the answer to a GET or HEAD of the file.
pub fn evaluate(headers: &HeaderMap, file: &Validators<'_>) -> Answer {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let date = |name| text(name).and_then(|v| httpdate::parse_http_date(v).ok());

    if let Some(value) = text(header::IF_MATCH) {
        if !tags_match(value, file.etag, Comparison::Strong) {
            return Answer::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) =
        (date(header::IF_UNMODIFIED_SINCE), file.last_modified)
        && modified > since
    {
        return Answer::PreconditionFailed;
    }

    if let Some(value) = text(header::IF_NONE_MATCH) {
        if tags_match(value, file.etag, Comparison::Weak) {
            return Answer::NotModified;
        }
    } else if let (Some(since), Some(modified)) =
        (date(header::IF_MODIFIED_SINCE), file.last_modified)
        && modified <= since
    {
        return Answer::NotModified;
    }

    let Some(range) = text(header::RANGE) else {
        return Answer::Full;
    };
    if let Some(condition) = headers.get(header::IF_RANGE) {
        let holds = condition.to_str().ok().is_some_and(|c| {
            if c.starts_with('"') || c.starts_with("W/") {
                tags_match(c, file.etag, Comparison::Strong)
            } else {
                httpdate::parse_http_date(c).ok() == file.last_modified
                    && file.last_modified.is_some()
            }
        });
        if !holds {
            return Answer::Full;
        }
    }
    match parse_range(range, file.len) {
        RangeHeader::Ignored | RangeHeader::Several => Answer::Full,
        RangeHeader::Single(range) => Answer::Partial(range),
        RangeHeader::Unsatisfiable => Answer::Unsatisfiable,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and equal (`If-Match`, `If-Range`).
    Strong,
    /// Equal opaque tags, weak or not (`If-None-Match`).
    Weak,
}

/// Whether an `If-Match`/`If-None-Match`/`If-Range` value names our tag. A
/// malformed list matches nothing.
fn tags_match(value: &str, ours: &str, comparison: Comparison) -> bool {
    let value = value.trim();
    if value == "*" {
        return true;
    }
    entity_tags(value).is_some_and(|tags| {
        tags.iter()
            .any(|(weak, tag)| *tag == ours && (comparison == Comparison::Weak || !weak))
    })
}

/// Parses `#entity-tag`: `"x"`, `W/"y"`, separated by commas and spaces.
/// Commas may appear inside a quoted tag, so this is a scan, not a split.
fn entity_tags(value: &str) -> Option<Vec<(bool, &str)>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return (!tags.is_empty()).then_some(tags);
        }
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let body = quoted.strip_prefix('"')?;
        let end = body.find('"')?;
        tags.push((weak, &body[..end]));
        rest = &body[end + 1..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t', ','])) {
            return None;
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RangeHeader {
    /// Not a valid `bytes` range set: served as if absent.
    Ignored,
    /// More than one range: served whole.
    Several,
    Single(RangeInclusive<u64>),
    Unsatisfiable,
}

/// Section 14.1.2: `bytes=first-last`, `bytes=first-` or `bytes=-suffix`.
fn parse_range(value: &str, len: u64) -> RangeHeader {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeHeader::Ignored;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeHeader::Ignored;
    }
    let mut specs = Vec::new();
    for spec in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((first, last)) = spec.split_once('-') else {
            return RangeHeader::Ignored;
        };
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let parsed = match (first.trim(), last.trim()) {
            ("", suffix) => number(suffix).map(|n| (None, Some(n))),
            (first, "") => number(first).map(|f| (Some(f), None)),
            (first, last) => match (number(first), number(last)) {
                (Some(f), Some(l)) if l >= f => Some((Some(f), Some(l))),
                _ => None,
            },
        };
        match parsed {
            Some(p) => specs.push(p),
            None => return RangeHeader::Ignored,
        }
    }
    match specs.as_slice() {
        [] => RangeHeader::Ignored,
        [(first, last)] => match (*first, *last) {
            (Some(first), last) if first < len => {
                RangeHeader::Single(first..=last.map_or(len - 1, |l| l.min(len - 1)))
            }
            (None, Some(suffix)) if suffix > 0 && len > 0 => {
                RangeHeader::Single(len.saturating_sub(suffix)..=len - 1)
            }
            _ => RangeHeader::Unsatisfiable,
        },
        _ => RangeHeader::Several,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use axum::http::HeaderValue;

    use super::*;

    const TAG: &str = "abc123";

    fn file() -> Validators<'static> {
        Validators {
            etag: TAG,
            last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_770_000_000)),
            len: 100,
        }
    }

    fn answer(pairs: &[(header::HeaderName, &str)]) -> Answer {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        evaluate(&headers, &file())
    }

    fn date(offset: i64) -> String {
        let at = UNIX_EPOCH + Duration::from_secs((1_770_000_000 + offset) as u64);
        httpdate::fmt_http_date(at)
    }

    #[test]
    fn ranges_follow_section_14() {
        use header::RANGE;
        assert_eq!(answer(&[(RANGE, "bytes=0-9")]), Answer::Partial(0..=9));
        assert_eq!(answer(&[(RANGE, "bytes=90-")]), Answer::Partial(90..=99));
        assert_eq!(answer(&[(RANGE, "bytes=-10")]), Answer::Partial(90..=99));
        assert_eq!(answer(&[(RANGE, "bytes=-500")]), Answer::Partial(0..=99));
        assert_eq!(answer(&[(RANGE, "bytes=95-500")]), Answer::Partial(95..=99));
        assert_eq!(answer(&[(RANGE, "BYTES = 1-1")]), Answer::Partial(1..=1));
        // Invalid, or another unit: ignored.
        for ignored in [
            "null",
            "items=0-5",
            "bytes=5-2",
            "bytes=",
            "bytes=a-b",
            "bytes=1",
            "bytes=--1",
            "bytes=+1-2",
        ] {
            assert_eq!(answer(&[(RANGE, ignored)]), Answer::Full, "{ignored}");
        }
        // Several: the whole file.
        assert_eq!(answer(&[(RANGE, "bytes=0-1, 5-6")]), Answer::Full);
        // Past the end.
        assert_eq!(answer(&[(RANGE, "bytes=100-")]), Answer::Unsatisfiable);
        assert_eq!(answer(&[(RANGE, "bytes=-0")]), Answer::Unsatisfiable);
    }

    #[test]
    fn if_range_needs_a_strong_match_or_the_exact_date() {
        use header::{IF_RANGE, RANGE};
        let quoted = format!("\"{TAG}\"");
        assert_eq!(
            answer(&[(RANGE, "bytes=0-9"), (IF_RANGE, &quoted)]),
            Answer::Partial(0..=9)
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=0-9"), (IF_RANGE, "\"nope\"")]),
            Answer::Full
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=0-9"), (IF_RANGE, &format!("W/{quoted}"))]),
            Answer::Full
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=0-9"), (IF_RANGE, &date(0))]),
            Answer::Partial(0..=9)
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=0-9"), (IF_RANGE, &date(-10))]),
            Answer::Full
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=0-9"), (IF_RANGE, "garbage")]),
            Answer::Full
        );
    }

    #[test]
    fn preconditions_are_evaluated_in_the_rfc_order() {
        use header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
        let quoted = format!("\"{TAG}\"");
        assert_eq!(answer(&[(IF_MATCH, &quoted)]), Answer::Full);
        assert_eq!(answer(&[(IF_MATCH, "*")]), Answer::Full);
        assert_eq!(
            answer(&[(IF_MATCH, &format!("\"x\", {quoted}"))]),
            Answer::Full
        );
        assert_eq!(
            answer(&[(IF_MATCH, "\"nope\"")]),
            Answer::PreconditionFailed
        );
        assert_eq!(
            answer(&[(IF_MATCH, &format!("W/{quoted}"))]),
            Answer::PreconditionFailed
        );
        assert_eq!(
            answer(&[(IF_UNMODIFIED_SINCE, &date(-1))]),
            Answer::PreconditionFailed
        );
        assert_eq!(answer(&[(IF_UNMODIFIED_SINCE, &date(0))]), Answer::Full);
        // If-Match wins over If-Unmodified-Since.
        assert_eq!(
            answer(&[(IF_MATCH, &quoted), (IF_UNMODIFIED_SINCE, &date(-1))]),
            Answer::Full
        );

        assert_eq!(answer(&[(IF_NONE_MATCH, &quoted)]), Answer::NotModified);
        assert_eq!(
            answer(&[(IF_NONE_MATCH, &format!("W/{quoted}"))]),
            Answer::NotModified
        );
        assert_eq!(answer(&[(IF_NONE_MATCH, "*")]), Answer::NotModified);
        assert_eq!(answer(&[(IF_NONE_MATCH, "\"nope\"")]), Answer::Full);
        assert_eq!(answer(&[(IF_NONE_MATCH, "null")]), Answer::Full);
        assert_eq!(
            answer(&[(IF_MODIFIED_SINCE, &date(0))]),
            Answer::NotModified
        );
        assert_eq!(answer(&[(IF_MODIFIED_SINCE, &date(-1))]), Answer::Full);
        assert_eq!(answer(&[(IF_MODIFIED_SINCE, "yesterday")]), Answer::Full);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            answer(&[(IF_NONE_MATCH, "\"nope\""), (IF_MODIFIED_SINCE, &date(0))]),
            Answer::Full
        );
        // A failed If-Match wins over everything after it.
        assert_eq!(
            answer(&[(IF_MATCH, "\"nope\""), (IF_NONE_MATCH, &quoted)]),
            Answer::PreconditionFailed
        );
    }

    #[test]
    fn entity_tag_lists_allow_commas_inside_tags() {
        assert_eq!(
            entity_tags("\"a,b\", W/\"c\""),
            Some(vec![(false, "a,b"), (true, "c")])
        );
        assert_eq!(entity_tags("\"a\"x"), None);
        assert_eq!(entity_tags("abc"), None);
        assert_eq!(entity_tags(""), None);
    }
}
