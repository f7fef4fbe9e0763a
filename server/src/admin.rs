//! Carrying out the command line: serving, and the admin commands.

use std::sync::Arc;

use anyhow::Context;
use homeward_shared::api::CreateUserRequest;
use homeward_shared::{Email, Role};

use crate::auth::password;
use crate::auth::rate_limit::LoginLimiter;
use crate::cli::{Cli, Command};
use crate::clock::{Clock, SystemClock};
use crate::configuration::Settings;
use crate::db::Db;
use crate::demo;
use crate::error::ApiError;
use crate::import::{self, ImportError};
use crate::routes::users::create_user;
use crate::startup::Application;
use crate::state::AppState;
use crate::store::{schools, users};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = cli.settings;
    settings.resolve_secret_files()?;
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => serve(settings, demo).await,
        Command::CreateSchool { name, admin_email, admin_name, admin_password } => {
            let state = offline_state(settings).await?;
            // Check the admin before the school is written: a refused command must leave no school
            // without an admin behind.
            let email = Email::parse(&admin_email)?;
            let trimmed = admin_name.trim();
            anyhow::ensure!(
                !trimmed.is_empty() && trimmed.chars().count() <= 100,
                "the admin's name must be 1 to 100 characters"
            );
            password::check_rules(&admin_password)?;
            anyhow::ensure!(
                users::find_by_email(&state.db.pool, email.as_ref()).await?.is_none(),
                "an account with the e-mail {email} already exists"
            );
            let mut tx = state.db.begin().await.map_err(ApiError::from)?;
            let school_id = schools::create(&mut tx, &name, state.clock.now()).await?;
            tx.commit().await.map_err(ApiError::from)?;
            let admin = create_user(
                &state,
                school_id,
                None,
                CreateUserRequest {
                    email: admin_email,
                    name: admin_name,
                    password: admin_password,
                    roles: vec![Role::Admin],
                    line_manager_id: None,
                    phone: None,
                },
            )
            .await;
            let admin = match admin {
                Ok(a) => a,
                Err(e) => {
                    // Only a race (the e-mail taken meanwhile) gets here after the checks above.
                    anyhow::bail!("the school was created ({school_id}) but its admin was not: {e}");
                }
            };
            println!("created school {name} with id {school_id}\nadmin: {} ({})", admin.email, admin.id);
            Ok(())
        }
        Command::AddUser { school_id, email, name, roles, line_manager_email, password } => {
            let state = offline_state(settings).await?;
            anyhow::ensure!(
                schools::exists(&state.db.pool, school_id).await?,
                "there is no school with id {school_id}"
            );
            let roles = Role::parse_list(&roles)?;
            let line_manager_id = match line_manager_email {
                Some(raw) => {
                    let email = Email::parse(&raw)?;
                    let manager = users::find_by_email(&state.db.pool, email.as_ref())
                        .await?
                        .filter(|m| m.school_id == school_id)
                        .with_context(|| format!("the line manager {email} is not in this school"))?;
                    Some(manager.id)
                }
                None => None,
            };
            let user = create_user(
                &state,
                school_id,
                None,
                CreateUserRequest { email, name, password, roles, line_manager_id, phone: None },
            )
            .await?;
            println!("added {} ({}) with id {}", user.name, user.email, user.id);
            Ok(())
        }
        Command::ImportStaff { school_id, file } => {
            let state = offline_state(settings).await?;
            anyhow::ensure!(
                schools::exists(&state.db.pool, school_id).await?,
                "there is no school with id {school_id}"
            );
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match import::import(&state.db, school_id, None, &text, state.clock.now()).await {
                Ok(imported) => {
                    println!("imported {} staff", imported.len());
                    Ok(())
                }
                Err(ImportError::Rows(rows)) => {
                    for row in &rows {
                        eprintln!("{}:{}: {}", file.display(), row.line, row.message);
                    }
                    anyhow::bail!("{} row(s) are wrong; nothing was imported", rows.len())
                }
                Err(ImportError::Failed(e)) => Err(e.into()),
            }
        }
        Command::SeedDemo => {
            let state = offline_state(settings).await?;
            let (id, created) = demo::seed(&state).await?;
            println!("{} demo school {id}", if created { "created" } else { "already have the" });
            print!("{}", demo::sign_ins());
            Ok(())
        }
    }
}

/// State for admin commands that do not serve HTTP.
async fn offline_state(settings: Settings) -> anyhow::Result<AppState> {
    let audit_key = crate::store::audit::AuditKey::for_settings(&settings)?;
    let db = Db::connect(&settings.database_url()?, audit_key).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(AppState {
        db,
        clock,
        settings,
        login_limiter: LoginLimiter::default(),
        vapid_public_key: None,
        channels: Default::default(),
        boards: Default::default(),
    })
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    if demo {
        let (_, created) = demo::seed(&app.state).await?;
        if created {
            println!("seeded the demo school");
        }
        print!("{}", demo::sign_ins());
    }
    println!("listening on http://{}", app.address());
    let handle = app.handle();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping: finishing requests in flight");
        handle.stop(true).await;
    });
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
