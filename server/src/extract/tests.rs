//! The /sync token in a WebSocket subprotocol, a bearer header or `?token=`.

use axum::http::{HeaderMap, HeaderValue, header::SEC_WEBSOCKET_PROTOCOL};

use super::*;

fn headers(values: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(v).expect("a header"),
        );
    }
    h
}

#[test]
fn the_token_comes_from_its_subprotocol_in_one_header_or_several() {
    let h = headers(&["propsync.v1, propsync.token.aaa.bbb.ccc"]);
    assert_eq!(protocol_token(&h).as_deref(), Some("aaa.bbb.ccc"));
    let h = headers(&["propsync.v1", "propsync.token.x.y.z"]);
    assert_eq!(protocol_token(&h).as_deref(), Some("x.y.z"));
}

#[test]
fn no_token_subprotocol_means_the_other_ways_are_used() {
    assert_eq!(protocol_token(&headers(&[])), None);
    assert_eq!(protocol_token(&headers(&["propsync.v1"])), None);
    assert_eq!(protocol_token(&headers(&["propsync.token."])), None);
    let mut h = headers(&["chat"]);
    h.insert("authorization", HeaderValue::from_static("Bearer b.e.arer"));
    assert_eq!(protocol_token(&h), None);
    assert_eq!(token_of(&h, None).as_deref(), Some("b.e.arer"));
}
