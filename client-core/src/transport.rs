//! The thin IO shell around the [`Session`] (native): a tokio-tungstenite
//! WebSocket to the relay's `/sync`, reconnection with [`Backoff`], and the
//! resumable photo upload. Store and Automerge work run on the
//! blocking pool (`spawn_blocking`), never on the async threads.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use schema::wire::{self, Limits, Message};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, http::HeaderValue};

use crate::backoff::Backoff;
use crate::device::{Device, DeviceError, Session, SyncSummary};
use crate::engine::Input;
use crate::relay::{Client, RelayError, Upload};
use crate::store;

/// How a `sync` behaves.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// Connections to try before giving up.
    pub max_attempts: u32,
    /// The backoff between them.
    pub backoff: Backoff,
    /// How long everything must stay in sync before the session ends, so
    /// verdicts the relay writes right after a change still arrive.
    pub settle: Duration,
    /// The settle wait of a session that sent no changes (no verdict is
    /// coming): long enough for a message already on its way. A device
    /// that means to stay connected sets it as long as `settle`.
    pub quiet_settle: Duration,
    /// How long to wait for a message while documents are out of sync.
    pub stall: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff: Backoff::default(),
            settle: Duration::from_millis(400),
            quiet_settle: Duration::from_millis(30),
            stall: Duration::from_secs(20),
        }
    }
}

/// Steps the session on the blocking pool.
async fn step(session: &mut Option<Session>, input: Input) -> Result<Vec<Message>, DeviceError> {
    let Some(mut s) = session.take() else {
        return Err(DeviceError::Poisoned);
    };
    let (s, out) = tokio::task::spawn_blocking(move || {
        let out = s.handle(input);
        (s, out)
    })
    .await
    .map_err(|_| DeviceError::Poisoned)?;
    *session = Some(s);
    out
}

fn ws_err(e: tungstenite::Error) -> DeviceError {
    DeviceError::Relay(RelayError::WebSocket(Box::new(e)))
}

/// One connection: join, sync until idle (and settled), close.
async fn connection(
    client: &Client,
    session: &mut Option<Session>,
    config: &SyncConfig,
    progress: &mut (dyn FnMut(&SyncSummary, usize) + Send),
) -> Result<(), DeviceError> {
    let mut request = client.sync_url().into_client_request().map_err(ws_err)?;
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", client.token())) {
        request.headers_mut().insert("authorization", v);
    }
    // Small, latency-bound messages: disable Nagle's algorithm.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(ws_err)?;
    let (mut sink, mut stream) = ws.split();
    for m in step(session, Input::Connected).await? {
        sink.send(tungstenite::Message::binary(wire::encode(&m)))
            .await
            .map_err(ws_err)?;
    }
    let limits = Limits::default();
    loop {
        let (idle, outstanding, sent) = session.as_ref().map_or((false, 0, false), |s| {
            (
                s.is_idle(),
                s.engine().outstanding(),
                s.summary().changes_up > 0,
            )
        });
        // The settle wait is for verdicts on what this session sent: with
        // nothing sent, none is coming, so a sync that found nothing new ends
        // as soon as everything is confirmed.
        let wait = match (idle, sent) {
            (true, true) => config.settle,
            (true, false) => config.settle.min(config.quiet_settle),
            (false, _) => config.stall,
        };
        let next = tokio::time::timeout(wait, stream.next()).await;
        let frame = match next {
            Err(_) if idle => {
                let _ = sink.close().await;
                return Ok(());
            }
            Err(_) => return Err(RelayError::Stalled(outstanding).into()),
            Ok(None) => {
                return Err(RelayError::Protocol("the relay closed the connection".into()).into());
            }
            Ok(Some(Err(e))) => return Err(ws_err(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let bytes = match frame {
            tungstenite::Message::Binary(b) => b,
            tungstenite::Message::Close(_) => {
                return Err(RelayError::Protocol("the relay closed the connection".into()).into());
            }
            _ => continue,
        };
        let msg = wire::decode(&bytes, &limits)
            .map_err(|e| RelayError::Protocol(format!("bad frame: {e}")))?;
        for m in step(session, Input::Received(msg)).await? {
            sink.send(tungstenite::Message::binary(wire::encode(&m)))
                .await
                .map_err(ws_err)?;
        }
        if let Some(s) = session.as_ref() {
            if let Some(reason) = s.closing() {
                return Err(RelayError::Closed(reason.to_owned()).into());
            }
            progress(&s.summary(), s.engine().outstanding());
        }
    }
}

impl Device {
    /// Syncs once: uploads waiting photos, then syncs every document with
    /// the relay over one WebSocket until all are in sync, reconnecting with
    /// backoff (and resuming from the saved sync states) if the connection drops.
    ///
    /// # Errors
    /// When the device is not enrolled, the store fails, or no connection
    /// succeeded within `config.max_attempts`.
    pub async fn sync_once(&self) -> Result<SyncSummary, DeviceError> {
        self.sync_with(&SyncConfig::default(), &mut |_, _| {}).await
    }

    /// [`Device::sync_once`] with a configuration and a progress callback
    /// (the summary so far and how many documents are still out of sync).
    ///
    /// # Errors
    /// As [`Device::sync_once`].
    pub async fn sync_with(
        &self,
        config: &SyncConfig,
        progress: &mut (dyn FnMut(&SyncSummary, usize) + Send),
    ) -> Result<SyncSummary, DeviceError> {
        let started = self.now();
        let result = self.sync_inner(config, progress).await;
        let logged = match &result {
            Ok(s) => self.log_sync(started, Ok(s)),
            Err(e) => self.log_sync(started, Err(&e.to_string())),
        };
        if let Err(e) = logged {
            tracing::warn!(error = %e, "the sync log could not be written");
        }
        result
    }

    async fn sync_inner(
        &self,
        config: &SyncConfig,
        progress: &mut (dyn FnMut(&SyncSummary, usize) + Send),
    ) -> Result<SyncSummary, DeviceError> {
        let identity = self.identity()?;
        let client = Client::new(&identity.relay, &identity.token)?;
        let (photos, mut problems) = self.upload_photos(&client).await;
        let mut session = Some(Session::new(self)?);
        let mut backoff = config.backoff.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match connection(&client, &mut session, config, progress).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "sync connection failed");
                    step(&mut session, Input::Disconnected).await?;
                    if attempt >= config.max_attempts {
                        return Err(e);
                    }
                    problems.push(format!("connection {attempt}: {e}"));
                    let delay = backoff.next_delay(&mut rand::rng());
                    tokio::time::sleep(delay).await;
                }
            }
        }
        let mut summary = session.map(|s| s.summary()).unwrap_or_default();
        summary.photos_uploaded = photos;
        summary.problems.extend(problems);
        summary.documents = u64::try_from(self.inbox()?.len()).unwrap_or(u64::MAX);
        Ok(summary)
    }

    /// Uploads every photo the relay does not have in full, resuming each
    /// from what the relay says it holds. Failures are reported, not fatal:
    /// the tickets sync without the bytes.
    async fn upload_photos(&self, client: &Client) -> (u64, Vec<String>) {
        let mut done = 0;
        let mut problems = Vec::new();
        let todo = match self.photos_to_upload() {
            Ok(t) => t,
            Err(e) => return (0, vec![format!("photos: {e}")]),
        };
        for blob in todo {
            match self.upload_one(client, &blob).await {
                Ok(true) => done += 1,
                Ok(false) => problems.push(format!("photo {}: not complete yet", blob.sha256)),
                Err(e) => problems.push(format!("photo {}: {e}", blob.sha256)),
            }
        }
        (done, problems)
    }

    async fn upload_one(
        &self,
        client: &Client,
        blob: &store::BlobRow,
    ) -> Result<bool, DeviceError> {
        let bytes = self.photo_bytes(&blob.sha256)?.unwrap_or_default();
        let mut offset = client.blob_received(&blob.sha256).await?.unwrap_or(0);
        for _ in 0..3 {
            if offset >= blob.size {
                self.record_upload(&blob.sha256, blob.size, true)?;
                return Ok(true);
            }
            match client
                .put_blob(&blob.sha256, &blob.mime, &bytes, offset)
                .await?
            {
                Upload::Received(n, complete) => {
                    self.record_upload(&blob.sha256, n, complete)?;
                    if complete {
                        return Ok(true);
                    }
                    offset = n;
                }
                Upload::Resume(n) => offset = n,
            }
        }
        Ok(false)
    }
}
