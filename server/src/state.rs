//! The relay's shared state, and authentication of requests against it.

use std::sync::Arc;

use automerge::ActorId;
use chrono::Utc;
use schema::wire::PeerId;
use schema::{DeviceId, Principal, UserId};

use crate::auth::{self, AuthError, Claims, Keys};
use crate::config::Config;
use crate::hub::{Clock, Hub};
use crate::store::records;
use crate::store::{Db, StoreError};

/// Everything a handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct Relay {
    pub(crate) hub: Arc<Hub>,
    pub(crate) db: Db,
    pub(crate) keys: Keys,
    pub(crate) config: Arc<Config>,
    /// Slows down guessing of the field app's enrolment codes.
    pub(crate) enrol_limiter: Arc<crate::enrol::Limiter>,
}

/// Opens the relay's state on the system clock.
///
/// # Errors
/// When the data directory or database cannot be opened.
pub async fn open(config: Config) -> Result<Relay, StoreError> {
    open_with_clock(config, Arc::new(Utc::now)).await
}

/// Opens the relay's state with the given clock.
///
/// # Errors
/// When the data directory or database cannot be opened.
pub async fn open_with_clock(config: Config, clock: Clock) -> Result<Relay, StoreError> {
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
    let mut hub = Hub::new(Arc::new(db.clone()), relay_actor, relay_peer, clock);
    hub.limits.max_change_bytes = config.max_change_bytes;
    let hub = Arc::new(hub);
    Ok(Relay {
        hub,
        db,
        keys,
        config: Arc::new(config),
        enrol_limiter: Arc::default(),
    })
}

impl Relay {
    /// The relay's peer id in the sync protocol.
    pub fn peer_id(&self) -> String {
        self.hub.relay_peer.to_string()
    }

    /// Checks a token and the user and device behind it: who is asking.
    ///
    /// # Errors
    /// A bad, expired or revoked token; a disabled user.
    pub async fn authenticate(&self, token: &str) -> Result<(Principal, Claims), AuthError> {
        let claims = self.keys.verify(token, self.hub.now())?;
        let (user, dev) = (claims.sub.clone(), claims.dev.clone());
        let found = self
            .db
            .read(move |c| Ok((records::user(c, &user)?, records::device(c, &dev)?)))
            .await
            .map_err(|_| AuthError::Invalid)?;
        let (Some((user, _)), Some(device)) = found else {
            return Err(AuthError::Revoked);
        };
        if user.disabled || device.revoked_at.is_some() || device.username != user.username {
            return Err(AuthError::Revoked);
        }
        let principal = Principal {
            user: user.username,
            role: user.role,
            department: user.department,
            device: device.device_id,
        };
        Ok((principal, claims))
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
            ("session", self.config.session_ttl)
        } else {
            ("device", self.config.device_ttl)
        };
        self.keys
            .issue(user.as_str(), device.as_str(), kind, self.hub.now(), ttl)
    }
}
