//! Admin commands: users, devices, tokens, key rotation, sync-log export.
//! Used by `propsync-server admin …`, the demo seeding and the API.

use chrono::Utc;
use schema::inbox::DocKind;
use schema::{Department, DeviceId, DocId, Role, UserId};

use crate::auth::{self, hash_password};
use crate::error::{AppError, AppResult};
use crate::state::Relay;
use crate::store::records::{self, Device, User};

/// The virtual device a user's dashboard session acts from.
pub fn web_device(user: &UserId) -> DeviceId {
    DeviceId::new(format!("web-{user}"))
        .unwrap_or_else(|_| DeviceId::new("web").expect("a valid device id"))
}

/// Creates a user with an inbox and a dashboard device.
///
/// # Errors
/// A duplicate user name; storage errors.
pub async fn create_user(
    relay: &Relay,
    username: &UserId,
    display_name: &str,
    password: &str,
    role: Role,
    department: Option<Department>,
) -> AppResult<()> {
    let hash = hash_password(password)?;
    let inbox = DocId::random();
    let user = User {
        username: username.clone(),
        display_name: display_name.to_owned(),
        role,
        department: department.unwrap_or_else(|| role.default_department()),
        inbox_doc: inbox,
        disabled: false,
    };
    let web = Device {
        device_id: web_device(username),
        username: username.clone(),
        label: "dashboard".into(),
        created_at: relay.hub.now(),
        revoked_at: None,
        last_seen_at: None,
    };
    let now = relay.hub.now();
    // The user's dashboard actor is theirs from the start: no phone can bind it first.
    let actor = relay.hub.web_actor(username).to_hex_string();
    relay
        .db
        .write(move |tx| {
            records::insert_user(tx, &user, &hash, now)?;
            records::insert_device(tx, &web)?;
            records::bind_actor(tx, &actor, &web.device_id, &user.username, now)
        })
        .await?;
    let owner = username.clone();
    relay
        .hub
        .relay_write(inbox, Some(DocKind::Inbox), move |t| {
            schema::doc::create_inbox(t, &owner)
        })
        .await?;
    Ok(())
}

/// Enrolls a device for a user and returns its token.
///
/// # Errors
/// Unknown user, duplicate device; storage errors.
pub async fn enroll_device(
    relay: &Relay,
    username: &UserId,
    device: &DeviceId,
    label: &str,
) -> AppResult<String> {
    let name = username.to_string();
    if relay
        .db
        .read(move |c| records::user(c, &name))
        .await?
        .is_none()
    {
        return Err(AppError::NotFound(format!("no user {username}")));
    }
    let d = Device {
        device_id: device.clone(),
        username: username.clone(),
        label: label.to_owned(),
        created_at: relay.hub.now(),
        revoked_at: None,
        last_seen_at: None,
    };
    relay
        .db
        .write(move |tx| records::insert_device(tx, &d))
        .await?;
    Ok(relay.issue_token(username, device, false)?)
}

/// Revokes a device: its token stops working at once and its connections close.
///
/// # Errors
/// Storage errors.
pub async fn revoke_device(relay: &Relay, device: &DeviceId) -> AppResult<bool> {
    let (id, now) = (device.to_string(), relay.hub.now());
    let revoked = relay
        .db
        .write(move |tx| records::revoke_device(tx, &id, now))
        .await?;
    relay.hub.kick(Some(device), None, "device revoked");
    Ok(revoked)
}

/// Changes a user's role; their open connections close so the next one
/// carries the new role.
///
/// # Errors
/// Unknown user; storage errors.
pub async fn set_role(
    relay: &Relay,
    user: &UserId,
    role: Role,
    department: Option<Department>,
) -> AppResult<()> {
    let (name, dept) = (
        user.to_string(),
        department.unwrap_or_else(|| role.default_department()),
    );
    if !relay
        .db
        .write(move |tx| records::set_role(tx, &name, role, dept))
        .await?
    {
        return Err(AppError::NotFound(format!("no user {user}")));
    }
    relay.hub.kick(None, Some(user), "role changed");
    Ok(())
}

/// Makes a new signing key and retires the others: every token issued before
/// stops working.
///
/// # Errors
/// Storage errors.
pub async fn rotate_key(relay: &Relay) -> AppResult<String> {
    let key = auth::new_key();
    let (kid, now) = (key.kid.clone(), Utc::now());
    let keep = kid.clone();
    relay
        .db
        .write(move |tx| {
            records::insert_key(tx, &key, now)?;
            records::retire_keys_except(tx, &keep, now)
        })
        .await?;
    relay
        .keys
        .replace(relay.db.read(records::active_keys).await?);
    Ok(kid)
}

/// One CSV document: the header, then one record per row (see `csvout`).
fn csv(header: &str, rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = crate::csvout::CsvOut::default();
    out.row(header.split(','));
    for cols in rows {
        out.row(cols);
    }
    out.finish()
}

/// The whole per-change ledger as CSV, oldest first.
///
/// # Errors
/// Storage errors.
pub async fn export_sync_log(relay: &Relay) -> AppResult<String> {
    let rows = relay
        .db
        .read(|c| records::change_ledger(c, &records::SyncLogFilter::default(), None))
        .await?;
    Ok(csv(
        "hash,doc_id,actor,username,device_id,session_id,bytes,authored_at,received_at,outcome,rule,reason",
        rows.into_iter().rev().map(|r| {
            vec![
                r.hash,
                r.doc_id.to_string(),
                r.actor,
                r.username.to_string(),
                r.device_id.to_string(),
                r.session_id.map(|s| s.to_string()).unwrap_or_default(),
                r.bytes.to_string(),
                schema::doc::rfc3339(r.authored_at),
                schema::doc::rfc3339(r.received_at),
                r.outcome,
                r.rule.unwrap_or_default(),
                r.reason.unwrap_or_default(),
            ]
        }),
    ))
}

/// Every sync session (one per connection) with its counters as CSV, oldest first.
///
/// # Errors
/// Storage errors.
pub async fn export_sync_sessions(relay: &Relay) -> AppResult<String> {
    let rows = relay
        .db
        .read(|c| records::sync_sessions(c, &records::SyncLogFilter::default(), None))
        .await?;
    Ok(csv(
        "id,username,device_id,peer_id,remote_addr,started_at,ended_at,end_reason,bytes_in,bytes_out,\
         messages_in,messages_out,documents,changes_received,accepted,conflict,rejected,hard_rejected",
        rows.into_iter().rev().map(|r| {
            let n = &r.counters;
            vec![
                r.id.to_string(),
                r.username,
                r.device_id,
                r.peer_id.unwrap_or_default(),
                r.remote_addr.unwrap_or_default(),
                r.started_at,
                r.ended_at.unwrap_or_default(),
                r.end_reason.unwrap_or_default(),
                n.bytes_in.to_string(),
                n.bytes_out.to_string(),
                n.messages_in.to_string(),
                n.messages_out.to_string(),
                n.documents.to_string(),
                n.changes_received.to_string(),
                n.accepted.to_string(),
                n.conflict.to_string(),
                n.rejected.to_string(),
                n.hard_rejected.to_string(),
            ]
        }),
    ))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use schema::{DeviceId, DocId, UserId};

    use relay_core::ledger::{ChangeEntry, ChangeOutcome};

    use crate::store::records::{self, SessionCounters};

    /// The REST sync log shows the newest rows; the export must hold all of them.
    #[tokio::test]
    async fn the_export_holds_every_change_and_session() {
        let dir = std::env::temp_dir().join(format!("propsync-export-{}", rand::random::<u64>()));
        let relay = crate::open(crate::Config::new(
            dir.clone(),
            "127.0.0.1:0".parse().expect("an address"),
        ))
        .await
        .expect("a relay");
        let (sessions, changes) = (1_203_usize, 5_321_usize);
        let user = UserId::new("eng1").expect("a user id");
        let device = DeviceId::new("eng1-phone").expect("a device id");
        relay
            .db
            .write(move |tx| {
                let now = Utc::now();
                let doc = DocId::random();
                for s in 0..sessions {
                    let id = records::start_session(tx, &user, &device, None, now)?;
                    let c = SessionCounters {
                        changes_received: 1,
                        accepted: 1,
                        ..SessionCounters::default()
                    };
                    records::update_session(tx, id, None, &c, Some((now, "closed")))?;
                    let per = changes / sessions + usize::from(s < changes % sessions);
                    for n in 0..per {
                        let hash = hex::decode(format!("{s:08x}{n:056x}")).expect("hex");
                        records::insert_change(
                            tx,
                            &ChangeEntry {
                                hash: automerge::ChangeHash::try_from(hash.as_slice())
                                    .expect("32 bytes"),
                                doc,
                                actor: automerge::ActorId::from([0xa1_u8; 16]),
                                user: user.clone(),
                                device: device.clone(),
                                session: Some(id),
                                bytes: 100,
                                authored_at: now,
                                received_at: now,
                                outcome: ChangeOutcome::Accepted,
                                rule: None,
                                reason: Some("a, \"quoted\"\nreason".into()),
                            },
                        )?;
                    }
                }
                Ok(())
            })
            .await
            .expect("rows written");
        let ledger = super::export_sync_log(&relay).await.expect("the ledger");
        let records: Vec<csv::StringRecord> = csv::Reader::from_reader(ledger.as_bytes())
            .records()
            .collect::<Result<_, _>>()
            .expect("the export reads as CSV");
        assert_eq!(records.len(), changes, "every ledger row exported");
        assert!(
            records
                .iter()
                .all(|r| r.get(11) == Some("a, \"quoted\"\nreason")),
            "the reason with a comma, quotes and a line break survives"
        );
        assert!(ledger.ends_with("\r\n"), "CRLF line ends, as the reports");
        let log = super::export_sync_sessions(&relay)
            .await
            .expect("the sessions");
        assert_eq!(log.lines().count(), sessions + 1, "every session exported");
        assert!(log.lines().nth(1).expect("a row").starts_with("1,eng1,"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
