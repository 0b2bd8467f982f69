//! Device tests: actions are refused before any change or make exactly one;
//! sync against the in-test relay on a simulated network (no sleeps): resume,
//! change-rejected with reset and quarantine, purge after the inbox drops a
//! document.

use automerge::ReadDoc;
use schema::inbox::Access;
use schema::ticket::{Kind, Urgency};
use schema::{Action, EventData, Outcome, Role, Status, VerdictRecord};

use super::*;
use crate::actions;
use crate::testkit::{TestRelay, device_for, principal, sync, t0};

fn change_count(device: &Device, id: DocId) -> usize {
    device.load(id).unwrap().0.get_changes(&[]).len()
}

/// A device for `user` that has synced one order assigned to `assignee`.
fn synced(user: &str, assignee: &str) -> (Device, TestRelay, DocId) {
    let mut relay = TestRelay::new(principal(user, Role::Engineer));
    let id = relay.assigned_order(assignee);
    let device = device_for(&relay);
    sync(&device, &mut relay);
    (device, relay, id)
}

#[test]
fn first_sync_follows_the_inbox_and_fetches_the_ticket_with_its_verdicts() {
    let (device, _relay, id) = synced("eng1", "eng1");
    let v = device.show(&id.to_string()).unwrap();
    assert_eq!(v.official.status, Status::Assigned);
    assert_eq!(
        v.official.assignee.as_ref().map(UserId::as_str),
        Some("eng1")
    );
    assert!(v.pending.is_empty());
    assert_eq!(device.verdict_count(id).unwrap(), 2);
    let rows = device.inbox().unwrap();
    assert!(rows.iter().any(|r| r.id == id
        && r.listing == Listing::Listed
        && r.kind.as_deref() == Some("ticket")));
}

#[test]
fn an_action_the_person_may_not_take_is_refused_with_the_rule_before_any_change() {
    let (device, _relay, id) = synced("eng3", "eng1");
    let before = change_count(&device, id);
    let (action, data) = actions::complete(actions::Completion {
        result: "fixed".into(),
        labour_min: 30,
        ..Default::default()
    });
    let err = device.act(&id.to_string(), action, data).unwrap_err();
    let DeviceError::Refused(r) = err else {
        panic!("{err}")
    };
    // Assigned, not in progress: the state is checked before the assignee.
    assert_eq!(r.rule, "wrong_state", "{r}");
    let (action, data) = actions::accept();
    let DeviceError::Refused(r) = device.act(&id.to_string(), action, data).unwrap_err() else {
        panic!()
    };
    assert_eq!(r.rule, "not_assignee");
    assert!(
        r.reason.contains("eng3 is not the assignee"),
        "{}",
        r.reason
    );
    assert_eq!(change_count(&device, id), before);
    assert!(device.pending().unwrap().is_empty());
}

#[test]
fn eng3_completing_a_ticket_assigned_to_eng1_is_refused_not_assignee() {
    // eng1 has the order in progress; eng3's device sees it (say, read from a
    // shared view) and tries to complete it.
    let mut relay = TestRelay::new(principal("eng3", Role::Engineer));
    let id = relay.assigned_order("eng1");
    let eng1 = principal("eng1", Role::Engineer);
    relay.edit(id, |tx| {
        for (seq, action) in [(3, Action::Accept), (4, Action::Start)] {
            let e = crate::testkit::event(&eng1, action, EventData::default());
            schema::doc::append_event(tx, &e)?;
            schema::doc::put_verdict(
                tx,
                &e.id,
                &VerdictRecord {
                    seq,
                    outcome: Outcome::Accepted,
                    rule: "allowed".into(),
                    reason: String::new(),
                    at: t0(),
                },
            )?;
        }
        Ok(())
    });
    let device = device_for(&relay);
    sync(&device, &mut relay);
    let before = change_count(&device, id);
    let (action, data) = actions::complete(actions::Completion {
        result: "fixed".into(),
        labour_min: 30,
        ..Default::default()
    });
    let DeviceError::Refused(r) = device.act(&id.to_string(), action, data).unwrap_err() else {
        panic!()
    };
    assert_eq!(r.rule, "not_assignee");
    assert_eq!(change_count(&device, id), before);
}

#[test]
fn an_allowed_action_is_one_change_with_the_right_event_and_a_pending_row() {
    let (device, _relay, id) = synced("eng1", "eng1");
    let before = change_count(&device, id);
    let (action, data) = actions::accept();
    let eid = device.act(&id.to_string(), action, data).unwrap();
    assert_eq!(change_count(&device, id), before + 1);
    let (doc, report) = device.load(id).unwrap();
    assert!(report.is_clean());
    let last = doc.get_changes(&[]).last().cloned().unwrap();
    assert_eq!(last.actor_id(), &device.actor().unwrap());
    let t = schema::doc::read_ticket(&doc, None).unwrap();
    let e = t.event(&eid).unwrap();
    assert_eq!(
        (e.action.as_str(), e.by.as_str(), e.device.as_str(), e.at),
        ("accept", "eng1", "dev-eng1", t0())
    );
    let v = device.show(&id.to_string()).unwrap();
    assert_eq!(
        v.official.status,
        Status::Assigned,
        "official state waits for the verdict"
    );
    assert_eq!(v.with_pending.status, Status::Accepted);
    assert_eq!(v.pending.len(), 1);
    assert!(v.pending[0].refused.is_none());
    let pending = device.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event_id, eid.as_str());
    assert!(!pending[0].acked);
}

#[test]
fn an_offline_engineer_chains_actions_on_top_of_pending_ones() {
    let (device, _relay, id) = synced("eng1", "eng1");
    let t = id.to_string();
    for (action, data) in [
        actions::accept(),
        actions::start(),
        actions::hold("awaiting parts"),
        actions::resume(),
    ] {
        device.act(&t, action, data).unwrap();
    }
    let photo = device.add_photo(b"jpeg bytes", "image/jpeg").unwrap();
    let (action, data) = actions::complete(actions::Completion {
        result: "replaced the washer".into(),
        labour_min: 40,
        materials: vec![schema::ticket::Material {
            name: "washer".into(),
            qty: 2,
            unit_fen: schema::Fen::new(150),
        }],
        photos: vec![photo.clone()],
        ..Default::default()
    });
    device.act(&t, action, data).unwrap();
    let v = device.show(&t).unwrap();
    assert_eq!(v.with_pending.status, Status::Completed);
    assert_eq!(v.ticket.attachments.len(), 1);
    assert_eq!(v.ticket.attachments[0].sha256, photo);
    assert_eq!(v.with_pending.labour_min, 40);
    // A photo that is not in the store is refused.
    let (action, mut data) = actions::reply("x", vec![]);
    data.photos = vec!["ab".repeat(32)];
    assert!(device.act(&t, action, data).is_err());
}

#[test]
fn a_ticket_is_found_by_url_id_or_serial() {
    let (device, mut relay, id) = synced("eng1", "eng1");
    // The relay numbered the order when it accepted its issue.
    let serial = relay.ticket(id).server.serial.unwrap().to_string();
    assert_eq!(serial, "RO-2026-000001");
    sync(&device, &mut relay);
    for name in [id.url().to_string(), id.to_string(), serial] {
        assert_eq!(device.resolve(&name).unwrap(), id, "{name}");
    }
    assert!(matches!(
        device.resolve("RO-2026-000043"),
        Err(DeviceError::UnknownTicket(_))
    ));
}

#[test]
fn resume_after_reconnect_sends_only_what_changed() {
    let (device, mut relay, id) = synced("eng1", "eng1");
    let total = change_count(&device, id);
    assert!(total >= 1);
    let (action, data) = actions::accept();
    let eid = device.act(&id.to_string(), action, data).unwrap();
    let s = sync(&device, &mut relay);
    assert_eq!(s.changes_up, 1, "{s:?}");
    assert_eq!(
        s.changes_down, 1,
        "only the verdict change comes back: {s:?}"
    );
    assert_eq!(s.verdicts, 1);
    assert_eq!(s.acked, 1);
    assert_eq!(
        relay.ticket(id).server.verdicts[&eid].outcome,
        Outcome::Accepted
    );
    assert!(
        device.pending().unwrap().is_empty(),
        "judged: no longer pending"
    );
    let v = device.show(&id.to_string()).unwrap();
    assert_eq!(v.official.status, Status::Accepted);
    // Nothing new on either side: nothing moves.
    let s = sync(&device, &mut relay);
    assert_eq!(
        (s.changes_up, s.changes_down, s.verdicts),
        (0, 0, 0),
        "{s:?}"
    );
}

#[test]
fn a_dropped_connection_resumes_where_it_stopped() {
    let mut relay = TestRelay::new(principal("eng1", Role::Engineer));
    let a = relay.assigned_order("eng1");
    let b = relay.assigned_order("eng1");
    let device = device_for(&relay);
    // First connection: deliver only the first round, then drop it.
    let mut session = Session::new(&device).unwrap();
    let hello = session.handle(crate::engine::Input::Connected).unwrap();
    let mut to_device = Vec::new();
    for m in hello {
        to_device.extend(relay.handle(m));
    }
    let mut to_relay = Vec::new();
    for m in to_device {
        to_relay.extend(session.handle(crate::engine::Input::Received(m)).unwrap());
    }
    let mut to_device = Vec::new();
    for m in to_relay {
        to_device.extend(relay.handle(m));
    }
    drop(to_device);
    session.handle(crate::engine::Input::Disconnected).unwrap();
    relay.disconnect();
    drop(session);
    // Second connection finishes the job.
    sync(&device, &mut relay);
    for id in [a, b] {
        assert_eq!(
            device.show(&id.to_string()).unwrap().official.status,
            Status::Assigned
        );
    }
}

#[test]
fn change_rejected_resets_the_document_quarantines_local_changes_and_later_actions_sync() {
    let (device, mut relay, id) = synced("eng1", "eng1");
    // A change the relay hard-rejects: it writes the relay's `server` section.
    let forged = {
        let (mut doc, _) = device.load(id).unwrap();
        let change = commit(&mut doc, t0(), |tx| {
            schema::doc::put_verdict(
                tx,
                &schema::EventId::random(),
                &VerdictRecord {
                    seq: 99,
                    outcome: Outcome::Accepted,
                    rule: "allowed".into(),
                    reason: "forged".into(),
                    at: t0(),
                },
            )
        })
        .unwrap();
        device
            .keep(id, &doc, &change, "forged-1", "note", "note", t0(), None)
            .unwrap();
        change.hash()
    };
    let s = sync(&device, &mut relay);
    assert_eq!(relay.rejections, 1);
    assert_eq!(s.resets, 1, "{s:?}");
    assert!(!relay.has_change(id, &forged));
    let q = device.quarantine().unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].change_hash, forged.to_string());
    assert_eq!(q[0].rule, "server_field", "the relay's own rule name");
    assert!(!q[0].change_hex.is_empty());
    assert!(
        device.pending().unwrap().is_empty(),
        "moved to the quarantine"
    );
    // The document was fetched again and no longer holds the forged change.
    let (doc, _) = device.load(id).unwrap();
    assert!(doc.get_change_by_hash(&forged).is_none());
    assert_eq!(
        device.show(&id.to_string()).unwrap().official.status,
        Status::Assigned
    );
    // A later valid action syncs normally.
    let (action, data) = actions::accept();
    let eid = device.act(&id.to_string(), action, data).unwrap();
    let s = sync(&device, &mut relay);
    assert_eq!((s.resets, s.quarantined, s.verdicts), (0, 0, 1), "{s:?}");
    assert_eq!(
        relay.ticket(id).server.verdicts[&eid].outcome,
        Outcome::Accepted
    );
    assert_eq!(device.quarantine().unwrap().len(), 1);
}

#[test]
fn a_document_that_leaves_the_inbox_is_purged_once_its_changes_are_flushed() {
    let (device, mut relay, id) = synced("eng1", "eng1");
    let nid = device
        .note(&id.to_string(), "resident asked for a morning visit")
        .unwrap();
    relay.delist(id, false);
    let s = sync(&device, &mut relay);
    assert_eq!(s.purged, 1, "{s:?}");
    assert!(
        relay.ticket(id).notes.iter().any(|n| n.id == nid),
        "flushed before the purge"
    );
    assert!(device.inbox().unwrap().iter().all(|r| r.id != id));
    assert!(device.pending().unwrap().is_empty());
    assert!(device.quarantine().unwrap().is_empty());
    assert!(matches!(
        device.resolve(&id.to_string()),
        Err(DeviceError::UnknownTicket(_))
    ));
}

#[test]
fn when_access_ends_before_the_flush_the_unsent_changes_go_to_the_quarantine() {
    let (device, mut relay, id) = synced("eng1", "eng1");
    device
        .note(&id.to_string(), "written after access ended")
        .unwrap();
    relay.delist(id, true);
    let s = sync(&device, &mut relay);
    assert_eq!(s.purged, 1, "{s:?}");
    let q = device.quarantine().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].rule, "access_ended");
    assert!(
        q[0].summary.contains("written after access ended"),
        "{}",
        q[0].summary
    );
    assert!(device.inbox().unwrap().iter().all(|r| r.id != id));
}

#[test]
fn a_read_only_ticket_refuses_actions_and_notes() {
    let mut relay = TestRelay::new(principal("eng1", Role::Engineer));
    let id = relay.assigned_order("eng1");
    relay.list(id, Access::ReadOnly);
    let device = device_for(&relay);
    sync(&device, &mut relay);
    let (action, data) = actions::accept();
    let DeviceError::Refused(r) = device.act(&id.to_string(), action, data).unwrap_err() else {
        panic!()
    };
    assert_eq!(r.rule, "read_only");
    assert!(matches!(
        device.note(&id.to_string(), "x"),
        Err(DeviceError::Refused(_))
    ));
}

#[test]
fn an_on_site_report_is_one_change_and_syncs_with_a_verdict() {
    let mut relay = TestRelay::new(principal("eng1", Role::Engineer));
    let device = device_for(&relay);
    sync(&device, &mut relay);
    let report = Report {
        kind: Kind::Repair,
        household: None,
        location: "B2 car park".into(),
        title: "ceiling light out".into(),
        description: String::new(),
        category: Some("electrical".into()),
        urgency: Urgency::Normal,
    };
    let (url, eid) = device.report(&report).unwrap();
    let id = url.id();
    let (doc, _) = device.load(id).unwrap();
    assert_eq!(
        doc.get_changes(&[]).len(),
        1,
        "ticket and creation event in one change"
    );
    let v = device.show(&url.to_string()).unwrap();
    assert_eq!(v.official.status, Status::New);
    assert_eq!(v.with_pending.status, Status::Issued);
    let s = sync(&device, &mut relay);
    assert_eq!(s.verdicts, 1, "{s:?}");
    assert_eq!(
        relay.ticket(id).server.verdicts[&eid].outcome,
        Outcome::Accepted
    );
    assert_eq!(
        device.show(&url.to_string()).unwrap().official.status,
        Status::Issued
    );
    // Missing data is refused before anything is made.
    let bad = Report {
        category: None,
        ..report
    };
    let DeviceError::Refused(r) = device.report(&bad).unwrap_err() else {
        panic!()
    };
    assert_eq!(r.rule, "missing_data");
}

#[test]
fn verdicts_pushed_later_arrive_and_are_counted() {
    let (device, mut relay, id) = synced("eng1", "eng1");
    let (action, data) = actions::accept();
    device.act(&id.to_string(), action, data).unwrap();
    let s = sync(&device, &mut relay);
    assert_eq!(s.verdicts, 1);
    // An edit by someone else while connected is pushed by the relay.
    let mut session = Session::new(&device).unwrap();
    let hello = session.handle(crate::engine::Input::Connected).unwrap();
    crate::testkit::pump(&mut session, &mut relay, hello);
    relay.edit(id, |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "title", "kitchen tap leaks (rechecked)")?;
        Ok(())
    });
    let push = relay.push(id);
    let mut back = Vec::new();
    for m in push {
        back.extend(session.handle(crate::engine::Input::Received(m)).unwrap());
    }
    crate::testkit::pump(&mut session, &mut relay, back);
    assert!(session.is_idle());
    let (doc, _) = device.load(id).unwrap();
    let t = schema::doc::read_ticket(&doc, None).unwrap();
    assert_eq!(
        t.header.title, "kitchen tap leaks (rechecked)",
        "the relay's edit reached the phone unasked"
    );
}
