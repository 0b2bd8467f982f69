//! The JSON answers, natively: refusals are data, actions parse from the
//! form's names and data, and a report carries its photos in one change.

use client_core::schema::{DeviceId, Principal, Role, UserId};

use super::*;

fn enrolled(user: &str, role: Role) -> Device {
    let device = Device::open_in_memory().expect("an in-memory store");
    let principal = Principal::new(
        UserId::new(user).expect("a user id"),
        role,
        DeviceId::new(format!("{user}-phone")).expect("a device id"),
    );
    device
        .set_identity(&client_core::Identity {
            relay: "http://127.0.0.1:1".into(),
            token: "t".into(),
            principal,
            inbox: None,
            relay_peer_id: None,
        })
        .expect("an identity");
    device
}

#[test]
fn a_refusal_is_an_answer_not_an_error() {
    let device = enrolled("cashier1", Role::Cashier);
    // A cashier may not issue repair orders.
    let form: ReportForm = serde_json::from_value(json!({
        "kind": "repair", "location": "B2 car park", "title": "Broken barrier",
        "category": "electrical"
    }))
    .expect("a form");
    let answer = report(&device, form).expect("an answer");
    assert_eq!(answer["refused"]["rule"], "role_not_allowed", "{answer}");
}

#[test]
fn a_report_keeps_its_photo_in_the_creation_change() {
    let device = enrolled("eng1", Role::Engineer);
    let sha = device
        .add_photo(b"\xff\xd8 a jpeg", "image/jpeg")
        .expect("stored");
    let form: ReportForm = serde_json::from_value(json!({
        "kind": "repair", "location": "B1 stairwell", "title": "Loose handrail",
        "category": "civil", "photos": [sha]
    }))
    .expect("a form");
    let answer = report(&device, form).expect("an answer");
    let url = answer["ok"].as_str().expect("a url").to_owned();
    let screen = ticket_screen(&device, &url).expect("the screen");
    let attachments = &screen["view"]["ticket"]["attachments"];
    assert_eq!(attachments[0]["sha256"], sha.as_str(), "{screen}");
    assert_eq!(screen["photos"][&sha]["local"], true);
    assert_eq!(screen["photos"][&sha]["uploaded"], false);
    assert_eq!(device.pending().expect("pending").len(), 1);
}

#[test]
fn unknown_actions_and_unreadable_data_are_refusals() {
    let Err(DeviceError::Refused(r)) = action("fly", "{}") else {
        panic!("fly is no action")
    };
    assert_eq!(r.rule, "unknown_action");
    let Err(DeviceError::Refused(r)) = action("complete", r#"{"labour_min": "forty"}"#) else {
        panic!("labour must be a number")
    };
    assert_eq!(r.rule, "invalid_data");
    let (a, d) = action("hold", r#"{"reason": "awaiting parts"}"#).expect("a hold");
    assert_eq!(a, Action::Hold);
    assert_eq!(d.reason.as_deref(), Some("awaiting parts"));
}
