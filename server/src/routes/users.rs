use actix_web::{HttpResponse, web};
use homeward_shared::api::{
    CreateUserRequest, ImportErrors, ImportReport, SetPhoneRequest, UpdateUserRequest, UserView,
};
use homeward_shared::{Email, ErrorBody, FieldError, PhoneNumber, Role};
use uuid::Uuid;

use crate::auth::{AuthUser, password};
use crate::error::{ApiError, ApiResult};
use crate::import::{self, ImportError};
use crate::notify::outbox;
use crate::routes::extract::Json;
use crate::state::AppState;
use crate::store::sign_ins::{self, SignIns};
use crate::store::{audit, users};

/// The school's people: names, e-mails, roles and line managers, never home details. Staff need it to
/// choose a companion.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let mut people = users::list(&state.db.pool, user.school_id).await?;
    // A phone number is for admins and its owner only.
    if !user.has_any(&[Role::Admin]) {
        for person in people.iter_mut().filter(|p| p.id != user.user_id) {
            person.phone = None;
        }
    }
    Ok(HttpResponse::Ok().json(people))
}

/// Set or clear a user's mobile number for text-message alerts (admins, or the person themself).
#[utoipa::path(put, path = "/api/v1/users/{id}/phone", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")), request_body = SetPhoneRequest,
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_phone(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<SetPhoneRequest>,
) -> ApiResult<HttpResponse> {
    let id = crate::routes::parse_path_id(&path)?;
    if id != user.user_id {
        user.require(&[Role::Admin], "only admins can set another person's phone number")?;
    }
    let target = users::get_in_school(&state.db.pool, user.school_id, id).await?;
    let phone = match body.into_inner().phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(raw) => Some(PhoneNumber::parse(raw)?),
        None => None,
    };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    users::set_phone(&mut tx, target.id, phone.as_ref().map(|p| p.as_ref())).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: if phone.is_some() { "user.phone_set" } else { "user.phone_cleared" },
            subject: format!("user:{}", target.id),
            // The number itself stays out of the audit log, which the DSL reads.
            detail: format!("{}'s phone number for text-message alerts", target.name),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(users::get(&state.db.pool, target.id).await?.ok_or(ApiError::NotFound("user"))?))
}

/// Add a user to the caller's school (admins).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<CreateUserRequest>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can add users")?;
    let created = create_user(&state, user.school_id, Some(user.user_id), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Validate and store a new user; shared by the API and the admin command line.
pub async fn create_user(
    state: &AppState,
    school_id: Uuid,
    actor: Option<Uuid>,
    body: CreateUserRequest,
) -> ApiResult<UserView> {
    let email = Email::parse(&body.email)?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(FieldError::new("name", "the name must be 1 to 100 characters").into());
    }
    password::check_rules(&body.password)?;
    let phone = body.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(PhoneNumber::parse).transpose()?;
    let mut roles = body.roles;
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(FieldError::new("roles", "at least one role is required").into());
    }
    if let Some(manager) = body.line_manager_id {
        users::get_in_school(&state.db.pool, school_id, manager)
            .await
            .map_err(|_| FieldError::new("line_manager_id", "the line manager is not a member of this school"))?;
    }
    let password_hash = password::hash(body.password).await?;
    let now = state.clock.now();
    let new = users::NewUser {
        id: Uuid::new_v4(),
        school_id,
        email: email.to_string(),
        name,
        password_hash,
        roles,
        line_manager_id: body.line_manager_id,
        phone: phone.map(|p| p.to_string()),
    };
    let mut tx = state.db.begin().await?;
    users::insert(&mut tx, &new, now.timestamp_millis()).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id,
            actor_id: actor,
            action: "user.created",
            subject: format!("user:{}", new.id),
            detail: format!("{} ({})", new.email, users::encode_roles(&new.roles)),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    users::get(&state.db.pool, new.id).await?.ok_or(ApiError::NotFound("user"))
}

/// Import staff from CSV (`email,name,roles,line_manager_email,password`; roles separated by `;`).
/// Every bad row is reported with its line number; nothing is imported unless all rows are good.
#[utoipa::path(post, path = "/api/v1/users/import", tag = "users", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = ImportReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ImportErrors)))]
pub async fn import(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Result<web::Bytes, actix_web::Error>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can import staff")?;
    // Taken as a `Result` so that a file over the body limit gets the shared error body, not actix's text.
    let body = body.map_err(|e| match e.as_error::<actix_web::error::PayloadError>() {
        Some(actix_web::error::PayloadError::Overflow) => {
            ApiError::PayloadTooLarge("the CSV file is too large; split it into smaller files".into())
        }
        _ => ApiError::bad_request("invalid_csv", format!("the CSV file could not be read: {e}")),
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_csv", "the CSV file must be UTF-8 text"))?;
    // PostgreSQL cannot store U+0000 in text; refused here on both databases alike.
    if text.contains('\0') {
        return Err(ApiError::bad_request("invalid_csv", "the CSV file contains the NUL character (U+0000)"));
    }
    match import::import(&state.db, user.school_id, Some(user.user_id), text, state.clock.now()).await {
        Ok(users) => Ok(HttpResponse::Created().json(ImportReport { imported: users.len(), users })),
        Err(ImportError::Rows(rows)) => Ok(HttpResponse::UnprocessableEntity().json(ImportErrors {
            code: "invalid_rows".into(),
            message: format!("{} row(s) are wrong; nothing was imported", rows.len()),
            rows,
        })),
        Err(ImportError::Failed(e)) => Err(e),
    }
}

/// Change a user's roles, line manager, or deactivate (and reactivate) them (admins). A deactivated
/// user can no longer sign in, their sign-ins stop working, and their push devices are removed.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")), request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<UpdateUserRequest>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can change users")?;
    let id = crate::routes::parse_path_id(&path)?;
    let current = users::get_in_school(&state.db.pool, user.school_id, id).await?;
    let body = body.into_inner();
    let mut roles = body.roles.unwrap_or_else(|| current.roles.clone());
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(FieldError::new("roles", "at least one role is required").into());
    }
    let active = body.active.unwrap_or(current.active);
    let line_manager_id = match (body.clear_line_manager, body.line_manager_id) {
        (true, Some(_)) => {
            return Err(FieldError::new("line_manager_id", "give a line manager or clear it, not both").into());
        }
        (true, None) => None,
        (false, Some(manager)) => {
            if manager == id {
                return Err(FieldError::new("line_manager_id", "nobody is their own line manager").into());
            }
            let manager_view = users::get_in_school(&state.db.pool, user.school_id, manager)
                .await
                .map_err(|_| FieldError::new("line_manager_id", "the line manager is not a member of this school"))?;
            if !manager_view.active {
                return Err(FieldError::new("line_manager_id", "the line manager's account is deactivated").into());
            }
            Some(manager)
        }
        (false, None) => current.line_manager_id,
    };
    // An admin cannot lock the school out of its own administration by mistake.
    if id == user.user_id && (!active || !roles.contains(&Role::Admin)) {
        return Err(ApiError::conflict(
            "own_admin_account",
            "you cannot deactivate yourself or remove your own admin role: ask another admin",
        ));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    users::update(&mut tx, id, &roles, line_manager_id, active).await?;
    if !active {
        // No alert waits on a phone nobody answers for, and no device of theirs stays signed in.
        outbox::forget_devices(&mut tx, outbox::Devices::OfUser(id), now).await?;
        sign_ins::revoke(&mut tx, SignIns::OfUser(id), now, "deactivated").await?;
    }
    let mut changes = Vec::new();
    if roles != current.roles {
        changes.push(format!("roles {}", users::encode_roles(&roles)));
    }
    if line_manager_id != current.line_manager_id {
        changes.push(format!("line manager {}", line_manager_id.map(|m| m.to_string()).unwrap_or("none".into())));
    }
    if active != current.active {
        changes.push(if active { "reactivated".to_string() } else { "deactivated".to_string() });
    }
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "user.changed",
            subject: format!("user:{id}"),
            detail: if changes.is_empty() { "no change".into() } else { changes.join(", ") },
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(users::get_in_school(&state.db.pool, user.school_id, id).await?))
}
