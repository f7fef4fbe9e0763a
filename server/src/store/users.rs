//! Users of a school: staff, leaders, the DSL and admins, with their line managers.

use homeward_shared::Role;
use homeward_shared::api::UserView;
use uuid::Uuid;

use crate::db::WriteTx;
use crate::db::parse_id;
use crate::error::ApiError;

pub fn encode_roles(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

pub fn decode_roles(raw: &str) -> Vec<Role> {
    raw.split(',').filter_map(|r| Role::parse(r).ok()).collect()
}

/// A user about to be written; the password is already hashed.
pub struct NewUser {
    pub id: Uuid,
    pub school_id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub line_manager_id: Option<Uuid>,
    /// E.164, already validated.
    pub phone: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn insert(tx: &mut WriteTx, user: &NewUser, now_ms: i64) -> Result<(), ApiError> {
    let result = sqlx::query(
        "insert into users (user_id, school_id, email, name, password_hash, roles, line_manager_id, active, created_at, phone) \
         values ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)",
    )
    .bind(user.id.to_string())
    .bind(user.school_id.to_string())
    .bind(&user.email)
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(encode_roles(&user.roles))
    .bind(user.line_manager_id.map(|u| u.to_string()))
    .bind(now_ms)
    .bind(user.phone.as_deref())
    .execute(tx.conn())
    .await;
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(ApiError::conflict("email_taken", format!("an account with the e-mail {} already exists", user.email)))
        }
        other => other.map(|_| ()).map_err(ApiError::from),
    }
}

type Row = (String, String, String, String, String, String, Option<String>, i64, Option<String>, Option<String>);

const SELECT: &str = "select u.user_id, u.school_id, s.name, u.email, u.name, u.roles, u.line_manager_id, u.active, u.safe_pin_hash, u.phone \
                      from users u join schools s on s.school_id = u.school_id";

fn to_view(row: Row) -> Result<UserView, ApiError> {
    let (id, school_id, school_name, email, name, roles, line_manager, active, pin, phone) = row;
    Ok(UserView {
        id: parse_id(&id)?,
        school_id: parse_id(&school_id)?,
        school_name,
        email,
        name,
        roles: decode_roles(&roles),
        line_manager_id: line_manager.map(|l| parse_id(&l)).transpose()?,
        active: active != 0,
        has_pin: pin.is_some(),
        phone,
    })
}

pub async fn get<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    id: Uuid,
) -> Result<Option<UserView>, ApiError> {
    let row: Option<Row> =
        sqlx::query_as(&format!("{SELECT} where u.user_id = $1")).bind(id.to_string()).fetch_optional(exec).await?;
    row.map(to_view).transpose()
}

/// A user of this school, or 404: another school's users do not exist as far as the caller can tell.
pub async fn get_in_school<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    school_id: Uuid,
    id: Uuid,
) -> Result<UserView, ApiError> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where u.user_id = $1 and u.school_id = $2"))
        .bind(id.to_string())
        .bind(school_id.to_string())
        .fetch_optional(exec)
        .await?;
    row.map(to_view).transpose()?.ok_or(ApiError::NotFound("user"))
}

pub async fn list(pool: &sqlx::AnyPool, school_id: Uuid) -> Result<Vec<UserView>, ApiError> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} where u.school_id = $1 order by u.name, u.email"))
        .bind(school_id.to_string())
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(to_view).collect()
}

pub async fn find_by_email<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    email: &str,
) -> Result<Option<UserView>, ApiError> {
    let row: Option<Row> =
        sqlx::query_as(&format!("{SELECT} where u.email = $1")).bind(email).fetch_optional(exec).await?;
    row.map(to_view).transpose()
}

/// The stored password hash and active flag, for sign-in.
pub async fn credentials(pool: &sqlx::AnyPool, email: &str) -> Result<Option<(Uuid, String, bool)>, ApiError> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("select user_id, password_hash, active from users where email = $1")
            .bind(email)
            .fetch_optional(pool)
            .await?;
    row.map(|(id, hash, active)| Ok((parse_id(&id)?, hash, active != 0))).transpose()
}

/// The end-of-visit PIN hashes: (safe, duress).
pub async fn pins(tx: &mut WriteTx, user_id: Uuid) -> Result<(Option<String>, Option<String>), ApiError> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("select safe_pin_hash, duress_pin_hash from users where user_id = $1")
            .bind(user_id.to_string())
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.unwrap_or((None, None)))
}

pub async fn set_pins(tx: &mut WriteTx, user_id: Uuid, safe: &str, duress: &str) -> Result<(), ApiError> {
    sqlx::query("update users set safe_pin_hash = $1, duress_pin_hash = $2 where user_id = $3")
        .bind(safe)
        .bind(duress)
        .bind(user_id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn set_phone(tx: &mut WriteTx, user_id: Uuid, phone: Option<&str>) -> Result<(), ApiError> {
    sqlx::query("update users set phone = $1 where user_id = $2")
        .bind(phone)
        .bind(user_id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Change a user's roles, line manager and active flag.
pub async fn update(
    tx: &mut WriteTx,
    user_id: Uuid,
    roles: &[Role],
    line_manager_id: Option<Uuid>,
    active: bool,
) -> Result<(), ApiError> {
    sqlx::query("update users set roles = $1, line_manager_id = $2, active = $3 where user_id = $4")
        .bind(encode_roles(roles))
        .bind(line_manager_id.map(|u| u.to_string()))
        .bind(i64::from(active))
        .bind(user_id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}
