//! The relay's shared state, and authentication of requests against it.

use std::sync::Arc;

use automerge::ActorId;
use chrono::{DateTime, Utc};
use schema::wire::PeerId;
use schema::{DeviceId, Principal, UserId};

use crate::auth::{self, AuthError, Claims, Keys};
use crate::config::Config;
use crate::hub::{Clock, Hub};
use crate::limits::Edge;
use crate::seclog::SecurityLog;
use crate::store::{Db, StoreError};
use crate::store::{edges, records};

/// Everything a handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct Relay {
    pub(crate) hub: Arc<Hub>,
    pub(crate) db: Db,
    pub(crate) keys: Keys,
    pub(crate) config: Arc<Config>,
    pub(crate) edge: Arc<Edge>,
    pub(crate) seclog: SecurityLog,
    /// Slows down guessing of the field app's enrolment codes.
    pub(crate) enrol_limiter: Arc<crate::enrol::Limiter>,
    /// Household imports the dashboard follows with a progress bar.
    pub(crate) imports: Arc<crate::property::jobs::Jobs>,
}

/// A dashboard session, as login opens it.
#[derive(Debug, Clone)]
pub(crate) struct NewSession {
    pub(crate) token: String,
    pub(crate) csrf: String,
}

/// Opens the relay's state, on the configuration's clock.
///
/// # Errors
/// When the data directory or database cannot be opened.
pub async fn open(config: Config) -> Result<Relay, StoreError> {
    crate::metrics::handle();
    let source = config.clock.clone();
    let clock: Clock = Arc::new(move || source.now());
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StoreError::Corrupt(format!("cannot create {}: {e}", config.data_dir.display()))
    })?;
    std::fs::create_dir_all(config.blob_dir())
        .map_err(|e| StoreError::Corrupt(format!("cannot create the blob directory: {e}")))?;
    let db = Db::open_with_limit(&config.db_path(), config.max_db_pages)?;
    let now = clock();
    let actor_hex = match db.read(|c| records::meta(c, "relay_actor")).await? {
        Some(a) => a,
        None => {
            let a = ActorId::random().to_hex_string();
            let (a2, peer) = (a.clone(), format!("relay-{}", &a[..12]));
            db.write(move |tx| {
                records::set_meta(tx, "relay_actor", &a2)?;
                records::set_meta(tx, "relay_peer", &peer)
            })
            .await?;
            a
        }
    };
    let relay_actor = ActorId::from(
        hex::decode(&actor_hex).map_err(|_| StoreError::Corrupt("relay actor".into()))?,
    );
    let peer = db
        .read(|c| records::meta(c, "relay_peer"))
        .await?
        .unwrap_or_else(|| "relay".into());
    let relay_peer = PeerId::new(peer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if db.read(records::active_keys).await?.is_empty() {
        let key = auth::new_key();
        db.write(move |tx| records::insert_key(tx, &key, now))
            .await?;
    }
    let keys = Keys::new(db.read(records::active_keys).await?);
    let web_key = web_actor_key(&db).await?;
    bind_web_actors(&db, &web_key, now).await?;
    let mut hub = Hub::new(
        Arc::new(db.clone()),
        relay_actor,
        relay_peer,
        web_key,
        clock,
    );
    hub.limits.max_change_bytes = config.max_change_bytes;
    hub.storage_epoch = Some(storage_epoch(&db).await?);
    let retired: Vec<ActorId> = db
        .read(|c| records::meta(c, crate::ops::RETIRED_ACTORS_KEY))
        .await?
        .unwrap_or_default()
        .split(',')
        .filter_map(|a| hex::decode(a).ok())
        .map(ActorId::from)
        .collect();
    hub.retire_actors(&retired);
    let hub = Arc::new(hub);
    let seclog = SecurityLog::start(db.clone(), config.security_log_flush);
    Ok(Relay {
        hub,
        edge: Arc::new(Edge::new(config.limits.clone())),
        seclog,
        db,
        keys,
        config: Arc::new(config),
        enrol_limiter: Arc::default(),
        imports: Arc::default(),
    })
}

/// The relay's storage epoch, made on first start and anew by a restore.
async fn storage_epoch(db: &Db) -> Result<String, StoreError> {
    let key = crate::ops::EPOCH_KEY;
    if let Some(e) = db.read(move |c| records::meta(c, key)).await? {
        return Ok(e);
    }
    let e = hex::encode(rand::random::<[u8; 16]>());
    let e2 = e.clone();
    db.write(move |tx| records::set_meta(tx, key, &e2)).await?;
    Ok(e)
}

/// The secret dashboard users' actors are derived from, made on first start.
async fn web_actor_key(db: &Db) -> Result<[u8; 32], StoreError> {
    const KEY: &str = "web_actor_key";
    let hex_key = match db.read(|c| records::meta(c, KEY)).await? {
        Some(k) => k,
        None => {
            let k = hex::encode(rand::random::<[u8; 32]>());
            let k2 = k.clone();
            db.write(move |tx| records::set_meta(tx, KEY, &k2)).await?;
            k
        }
    };
    hex::decode(&hex_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| StoreError::Corrupt("the web actor key".into()))
}

/// Binds every user's dashboard actor to their dashboard device (users made
/// before actors were bound at creation). An actor already bound to another
/// device is reported in the security log: that user's dashboard actions
/// would be refused.
async fn bind_web_actors(db: &Db, key: &[u8; 32], now: DateTime<Utc>) -> Result<(), StoreError> {
    let users = db.read(records::users).await?;
    let key = *key;
    db.write(move |tx| {
        for u in &users {
            let actor = crate::hub::web_actor(&key, &u.username).to_hex_string();
            let device = crate::admin::web_device(&u.username);
            if let Err(StoreError::Conflict(detail)) =
                records::bind_actor(tx, &actor, &device, &u.username, now)
            {
                records::log_security(
                    tx,
                    now,
                    Some(u.username.as_str()),
                    Some(device.as_str()),
                    None,
                    "web_actor_taken",
                    &detail,
                )?;
            }
        }
        Ok(())
    })
    .await
}

impl Relay {
    /// The relay's peer id in the sync protocol.
    pub fn peer_id(&self) -> String {
        self.hub.relay_peer.to_string()
    }

    /// Checks a token and the user and device behind it: who is asking. A
    /// session token's session must still be open (not logged out).
    ///
    /// # Errors
    /// A bad, expired or revoked token; a disabled user; a session logged out.
    pub async fn authenticate(&self, token: &str) -> Result<(Principal, Claims), AuthError> {
        self.authenticate_with_csrf(token)
            .await
            .map(|(p, c, _)| (p, c))
    }

    /// [`Relay::authenticate`], with a session token's CSRF token.
    pub(crate) async fn authenticate_with_csrf(
        &self,
        token: &str,
    ) -> Result<(Principal, Claims, Option<String>), AuthError> {
        let claims = self.keys.verify(token, self.hub.now())?;
        let (user, dev) = (claims.sub.clone(), claims.dev.clone());
        let session = match claims.kind.as_str() {
            auth::SESSION => Some(claims.jti.clone().ok_or(AuthError::Invalid)?),
            auth::DEVICE => None,
            _ => return Err(AuthError::Invalid),
        };
        let found = self
            .db
            .read(move |c| {
                Ok((
                    records::user(c, &user)?,
                    records::device(c, &dev)?,
                    session
                        .map(|id| edges::web_session(c, &id))
                        .transpose()?
                        .flatten(),
                ))
            })
            .await
            .map_err(|_| AuthError::Invalid)?;
        let (Some((user, _)), Some(device), session) = found else {
            return Err(AuthError::Revoked);
        };
        if user.disabled || device.revoked_at.is_some() || device.username != user.username {
            return Err(AuthError::Revoked);
        }
        let csrf = match (claims.kind.as_str(), session) {
            (auth::DEVICE, _) => None,
            (_, Some(s)) if !s.revoked && s.username == user.username.as_str() => Some(s.csrf),
            _ => return Err(AuthError::Revoked),
        };
        let principal = Principal {
            user: user.username,
            role: user.role,
            department: user.department,
            device: device.device_id,
        };
        Ok((principal, claims, csrf))
    }

    /// Opens a dashboard session for `user`: a `web_sessions` row with its
    /// CSRF token, and a session token naming it.
    ///
    /// # Errors
    /// When no signing key exists or the row cannot be written.
    pub(crate) async fn open_session(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<NewSession, crate::error::AppError> {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let csrf = hex::encode(rand::random::<[u8; 16]>());
        let now = self.hub.now();
        let expires = now + self.config.session_ttl;
        let token = self.keys.issue_with_id(
            user.as_str(),
            device.as_str(),
            auth::SESSION,
            now,
            self.config.session_ttl,
            Some(&id),
        )?;
        let (i, u, c) = (id, user.to_string(), csrf.clone());
        self.db
            .write(move |tx| {
                edges::drop_expired_sessions(tx, now)?;
                edges::insert_web_session(tx, &i, &u, &c, now, expires)
            })
            .await?;
        Ok(NewSession { token, csrf })
    }

    /// Write transactions committed since the relay opened (each one fsync).
    #[doc(hidden)]
    pub fn write_transactions(&self) -> u64 {
        self.db.commits()
    }

    /// Argon2 password checks made by logins since the relay opened.
    #[doc(hidden)]
    pub fn password_checks(&self) -> u64 {
        self.edge.password_checks()
    }

    /// Writes the refusals gathered for the security log now.
    pub async fn flush_security_log(&self) {
        self.seclog.flush().await;
    }

    /// Issues a token for `user` on `device`.
    ///
    /// # Errors
    /// When no signing key exists.
    pub fn issue_token(
        &self,
        user: &UserId,
        device: &DeviceId,
        session: bool,
    ) -> Result<String, AuthError> {
        let (kind, ttl) = if session {
            (auth::SESSION, self.config.session_ttl)
        } else {
            (auth::DEVICE, self.config.device_ttl)
        };
        self.keys
            .issue(user.as_str(), device.as_str(), kind, self.hub.now(), ttl)
    }
}
