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
    relay
        .db
        .write(move |tx| {
            records::insert_user(tx, &user, &hash, now)?;
            records::insert_device(tx, &web)
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

/// The per-change ledger as CSV.
///
/// # Errors
/// Storage errors.
pub async fn export_sync_log(relay: &Relay) -> AppResult<String> {
    let rows = relay
        .db
        .read(|c| records::change_ledger(c, &records::SyncLogFilter::default()))
        .await?;
    let mut out = String::from(
        "hash,doc_id,actor,username,device_id,session_id,bytes,authored_at,received_at,outcome,rule,reason\n",
    );
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    for r in rows.iter().rev() {
        let cols = [
            r.hash.clone(),
            r.doc_id.to_string(),
            r.actor.clone(),
            r.username.to_string(),
            r.device_id.to_string(),
            r.session_id.map(|s| s.to_string()).unwrap_or_default(),
            r.bytes.to_string(),
            schema::doc::rfc3339(r.authored_at),
            schema::doc::rfc3339(r.received_at),
            r.outcome.clone(),
            r.rule.clone().unwrap_or_default(),
            r.reason.clone().unwrap_or_default(),
        ];
        out.push_str(&cols.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    Ok(out)
}
