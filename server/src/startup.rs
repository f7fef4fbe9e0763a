//! Building and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::{RequestHead, Server, ServerHandle};
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::auth::rate_limit::LoginLimiter;
use crate::clock::{Clock, SystemClock};
use crate::configuration::Settings;
use crate::db::{Backend, Db};
use crate::escalation::scheduler;
use crate::escalation::signals::SignalSettings;
use crate::notify::deliverer;
use crate::notify::email::Email;
use crate::notify::endpoint_guard::EndpointGuard;
use crate::notify::sms::Sms;
use crate::notify::web_push::{VapidKeys, WebPush};
use crate::notify::{Channel, Channels};
use crate::routes;
use crate::state::AppState;
use crate::telemetry::PrivateRootSpan;

pub struct Application {
    address: SocketAddr,
    server: Server,
    pub state: web::Data<AppState>,
}

/// Browsers may call the API from the configured origins and from this server's own (the web client);
/// a request from any other origin is refused before it reaches a handler.
fn cors(allowed: Arc<Vec<String>>) -> Cors {
    Cors::default()
        // A browser on another site is refused outright, not only denied the answer.
        .block_on_origin_mismatch(true)
        .allowed_origin_fn(move |origin, request| {
            let Ok(origin) = origin.to_str() else { return false };
            allowed.iter().any(|o| o == origin) || is_same_origin(origin, request)
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(3600)
}

/// The page's origin names the host the request was sent to: the web client served from here.
fn is_same_origin(origin: &str, request: &RequestHead) -> bool {
    let Some(host) = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Connect (and migrate) the database, bind the address (port 0 picks a free one) and prepare the server.
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let audit_key = crate::store::audit::AuditKey::for_settings(&settings)?;
        let mut db = Db::connect(&settings.database_url()?, audit_key).await?;
        db.signals = SignalSettings {
            signal_lost_after: chrono::Duration::seconds(settings.signal_lost_secs.max(1)),
            geofence_follow_up_after: chrono::Duration::seconds(settings.geofence_follow_up_secs.max(1)),
            safety_net: settings.reach_checks,
        };
        let listener = TcpListener::bind(settings.bind)?;
        let address = listener.local_addr()?;
        let vapid = VapidKeys::load_or_generate(&db).await?;
        let timeout = Duration::from_secs(settings.push_timeout_secs);
        if !settings.push_allow_hosts.is_empty() {
            tracing::warn!(
                hosts = ?settings.push_allow_hosts,
                "HOMEWARD_PUSH_ALLOW_HOSTS is set: push endpoints on these hosts may use plain http and \
                 non-public addresses. It is for tests only; never set it in production"
            );
        }
        let guard = EndpointGuard::new(&settings.push_allow_hosts);
        let push: Arc<dyn Channel> =
            Arc::new(WebPush::new(vapid.clone(), settings.vapid_subject.clone(), timeout, guard)?);
        let email = Email::from_settings(&settings.email, settings.public_url(), timeout)?;
        let sms = Sms::from_settings(&settings.sms, settings.public_url(), timeout)?;
        let channels = Channels {
            push: Some(push),
            email: email.map(|e| Arc::new(e) as Arc<dyn Channel>),
            sms: sms.map(|s| Arc::new(s) as Arc<dyn Channel>),
        };
        db.channels = channels.configured();
        let poll = Duration::from_millis(settings.poll_ms.max(10));
        if db.backend == Backend::Postgres {
            // Other server processes' changes, for this process's live boards.
            tokio::spawn(crate::live::listen(settings.database_url()?, db.live.clone()));
            tokio::spawn(crate::live::tell_positions(db.pool.clone(), db.live.clone()));
            tokio::spawn(crate::db::planner_statistics::keep_fresh(db.pool.clone()));
        }
        let state = web::Data::new(AppState {
            db,
            clock,
            settings,
            login_limiter: LoginLimiter::default(),
            vapid_public_key: Some(vapid.public_b64.clone()),
            channels: channels.clone(),
            boards: Default::default(),
        });
        // The engine: whatever fell due while the server was down fires as soon as these start.
        tokio::spawn(scheduler::run(state.clone().into_inner(), poll));
        tokio::spawn(deliverer::run(state.clone().into_inner(), channels, poll));
        let app_state = state.clone();
        let cors_origins = Arc::new(state.settings.cors_origins.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(cors(cors_origins.clone()))
                .wrap(TracingLogger::<PrivateRootSpan>::new())
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "no-referrer"))
                        .add(("Cache-Control", "no-store")),
                )
                .app_data(app_state.clone())
                .app_data(web::PayloadConfig::new(2 * 1024 * 1024))
                .configure(routes::configure)
        })
        .keep_alive(Duration::from_secs(homeward_shared::api::SERVER_KEEP_ALIVE_SECS))
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self { address, server, state })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
