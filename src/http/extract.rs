//! Request parsing at the edge: axum's Path and Query with their rejections
//! turned into problem+json, strict query parameters, and content negotiation.

use axum::extract::FromRequestParts;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;

use super::error::ApiError;

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        // e.g. "unknown field `foo`, expected one of `mode`, ..."
        ApiError::bad_request("invalid-query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request("invalid-path", r.body_text())
    }
}

/// The media types a route can produce, best first when the client is indifferent.
pub fn negotiate(headers: &HeaderMap, offered: &[&'static str]) -> Result<&'static str, ApiError> {
    let Some(accept) = headers.get(ACCEPT) else {
        return Ok(offered[0]);
    };
    let accept = accept.to_str().map_err(|_| {
        ApiError::bad_request("invalid-accept", "the Accept header is not valid text")
    })?;
    // (q, order, media range); highest q wins, then the client's order.
    let mut ranges: Vec<(f32, usize, &str)> = Vec::new();
    for (order, item) in accept.split(',').enumerate() {
        let mut parts = item.split(';').map(str::trim);
        let range = parts.next().unwrap_or("");
        if range.is_empty() {
            continue;
        }
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 {
            ranges.push((q, order, range));
        }
    }
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, range) in &ranges {
        let found = offered.iter().find(|media| matches(range, media));
        if let Some(media) = found {
            return Ok(media);
        }
    }
    Err(ApiError::not_acceptable(format!(
        "cannot produce any of {accept:?}; this route offers {}",
        offered.join(", ")
    )))
}

fn matches(range: &str, media: &str) -> bool {
    let range = range.to_ascii_lowercase();
    if range == "*/*" || range == media {
        return true;
    }
    match (range.strip_suffix("/*"), media.split_once('/')) {
        (Some(kind), Some((media_kind, _))) => kind == media_kind,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, value.parse().unwrap());
        h
    }

    #[test]
    fn negotiation_follows_q_values_and_wildcards() {
        let offered = ["application/json", "application/x-tar", "text/csv"];
        assert_eq!(
            negotiate(&HeaderMap::new(), &offered).unwrap(),
            "application/json"
        );
        assert_eq!(
            negotiate(&accept("*/*"), &offered).unwrap(),
            "application/json"
        );
        assert_eq!(
            negotiate(&accept("application/x-tar"), &offered).unwrap(),
            "application/x-tar"
        );
        assert_eq!(
            negotiate(&accept("text/*;q=0.9, application/x-tar;q=0.5"), &offered).unwrap(),
            "text/csv"
        );
        assert_eq!(
            negotiate(&accept("text/csv;q=0, */*;q=0.1"), &offered).unwrap(),
            "application/json"
        );
        assert!(negotiate(&accept("image/png"), &offered).is_err());
    }
}
