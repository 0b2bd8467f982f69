//! The offers and the work list: what the field app shows is what
//! `Policy::check` decides, on the state the device shows.

use schema::{Action, Role};

use super::*;
use crate::actions;
use crate::testkit::{TestRelay, device_for, principal, sync};

fn offer<'a>(offers: &'a [Offer], action: &str) -> &'a Offer {
    offers
        .iter()
        .find(|o| o.action == action)
        .unwrap_or_else(|| panic!("no {action} in {offers:?}"))
}

#[test]
fn the_assignee_is_offered_the_next_steps_and_refused_the_others_with_the_rule() {
    let mut relay = TestRelay::new(principal("eng1", Role::Engineer));
    let id = relay.assigned_order("eng1");
    let device = device_for(&relay);
    sync(&device, &mut relay);
    let t = id.to_string();

    let offers = device.offers(&t).unwrap();
    assert_eq!(offer(&offers, "accept").refused, None);
    assert_eq!(offer(&offers, "hand_back").needs, ["reason"]);
    assert_eq!(offer(&offers, "hand_back").refused, None);
    let complete = offer(&offers, "complete");
    assert_eq!(
        complete.refused.as_ref().map(|r| r.rule.as_str()),
        Some("wrong_state")
    );
    assert_eq!(complete.needs, ["result", "labour_min", "materials"]);
    // Supervisors' steps are not an engineer's to see.
    assert!(offers.iter().all(|o| o.action != "assign"));

    // After accept and start (pending, not judged), the view moves on.
    let (a, d) = actions::accept();
    device.act(&t, a, d).unwrap();
    let (a, d) = actions::start();
    device.act(&t, a, d).unwrap();
    let offers = device.offers(&t).unwrap();
    assert_eq!(offer(&offers, "complete").refused, None);
    assert_eq!(
        offer(&offers, "accept")
            .refused
            .as_ref()
            .map(|r| r.rule.as_str()),
        Some("wrong_state")
    );
}

#[test]
fn another_engineer_is_refused_as_not_the_assignee() {
    let mut relay = TestRelay::new(principal("eng3", Role::Engineer));
    let id = relay.assigned_order("eng1");
    let device = device_for(&relay);
    sync(&device, &mut relay);
    let offers = device.offers(&id.to_string()).unwrap();
    let accept = offer(&offers, "accept");
    assert_eq!(
        accept.refused.as_ref().map(|r| r.rule.as_str()),
        Some("not_assignee")
    );
}

#[test]
fn the_work_list_shows_pending_counts_and_the_pending_status() {
    let mut relay = TestRelay::new(principal("eng1", Role::Engineer));
    let id = relay.assigned_order("eng1");
    let device = device_for(&relay);
    sync(&device, &mut relay);
    let list = device.work(Utc::now()).unwrap();
    assert_eq!(list.items.len(), 1, "{list:?}");
    let item = &list.items[0];
    assert_eq!(item.url, id.url());
    assert_eq!(item.status, "ASSIGNED");
    assert_eq!(item.pending, 0);
    assert!(item.mine);

    let (a, d) = actions::accept();
    device.act(&id.to_string(), a, d).unwrap();
    device.note(&id.to_string(), "on my way").unwrap();
    let item = &device.work(Utc::now()).unwrap().items[0];
    assert_eq!(item.status, "ACCEPTED");
    assert_eq!(item.official_status, "ASSIGNED");
    assert_eq!(item.pending, 2);
    assert_eq!(Action::Accept.as_str(), "accept");
}
