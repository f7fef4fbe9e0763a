//! Staff import from CSV (`email,name,roles,line_manager_email,password`). Every bad row is reported
//! with its line number and reason, and nothing is imported unless every row is good.

use std::collections::HashMap;

use homeward_shared::api::{RowError, UserView};
use homeward_shared::{Email, Role};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::password;
use crate::db::Db;
use crate::error::ApiError;
use crate::store::{audit, users};

pub const COLUMNS: [&str; 5] = ["email", "name", "roles", "line_manager_email", "password"];
const MAX_ROWS: usize = 5_000;

#[derive(Debug)]
pub struct StaffRow {
    pub line: u64,
    pub email: Email,
    pub name: String,
    pub roles: Vec<Role>,
    pub line_manager_email: Option<Email>,
    pub password: String,
}

#[derive(Debug)]
pub enum ImportError {
    Rows(Vec<RowError>),
    Failed(ApiError),
}

impl From<ApiError> for ImportError {
    fn from(e: ApiError) -> Self {
        ImportError::Failed(e)
    }
}

/// Check the file's shape and every row's values on their own (not yet against the database).
pub fn parse(text: &str) -> Result<Vec<StaffRow>, Vec<RowError>> {
    let (rows, errors) = parse_all(text);
    if errors.is_empty() { Ok(rows) } else { Err(errors) }
}

/// Every good row and every bad one, so the checks against the database can run on the good rows and
/// the admin hears about all problems in one answer.
pub fn parse_all(text: &str) -> (Vec<StaffRow>, Vec<RowError>) {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>(),
        Err(e) => return (vec![], vec![RowError { line: 1, message: format!("the header row cannot be read: {e}") }]),
    };
    if headers != COLUMNS {
        return (
            vec![],
            vec![RowError { line: 1, message: format!("the header must be exactly `{}`", COLUMNS.join(",")) }],
        );
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RowError { line, message: format!("this row cannot be read: {e}") });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != COLUMNS.len() {
            errors.push(RowError {
                line,
                message: format!("expected {} columns, found {}", COLUMNS.len(), record.len()),
            });
            continue;
        }
        if rows.len() + errors.len() >= MAX_ROWS {
            errors.push(RowError { line, message: format!("a file may hold at most {MAX_ROWS} rows") });
            break;
        }
        match parse_row(line, &record) {
            Ok(row) => rows.push(row),
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RowError { line: 1, message: "the file has no staff rows".into() });
    }
    let mut seen: HashMap<String, u64> = HashMap::new();
    for row in &rows {
        if let Some(first) = seen.insert(row.email.to_string(), row.line) {
            errors.push(RowError { line: row.line, message: format!("{} is already on line {first}", row.email) });
        }
    }
    errors.sort_by_key(|e| e.line);
    (rows, errors)
}

fn parse_row(line: u64, record: &csv::StringRecord) -> Result<StaffRow, String> {
    let email = Email::parse(&record[0]).map_err(|e| e.message)?;
    let name = record[1].to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("the name must be 1 to 100 characters".into());
    }
    let roles = Role::parse_list(&record[2]).map_err(|e| e.message)?;
    let line_manager_email = match record[3].trim() {
        "" => None,
        raw => Some(Email::parse(raw).map_err(|e| format!("line manager: {}", e.message))?),
    };
    if line_manager_email.as_ref() == Some(&email) {
        return Err("a person cannot be their own line manager".into());
    }
    let password = record[4].to_string();
    password::check_rules(&password).map_err(|e| e.message)?;
    Ok(StaffRow { line, email, name, roles, line_manager_email, password })
}

/// Import into `school_id`: all rows or none.
pub async fn import(
    db: &Db,
    school_id: Uuid,
    actor_id: Option<Uuid>,
    text: &str,
    now: Timestamp,
) -> Result<Vec<UserView>, ImportError> {
    let (rows, mut errors) = parse_all(text);
    if errors.iter().any(|e| e.line == 1) {
        return Err(ImportError::Rows(errors));
    }
    let existing = users::list(&db.pool, school_id).await?;
    let mut managers: HashMap<String, Uuid> = existing.iter().map(|u| (u.email.clone(), u.id)).collect();
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::new_v4()).collect();
    for (row, id) in rows.iter().zip(&ids) {
        if users::find_by_email(&db.pool, row.email.as_ref()).await?.is_some() {
            errors.push(RowError {
                line: row.line,
                message: format!("an account with the e-mail {} already exists", row.email),
            });
        }
        managers.insert(row.email.to_string(), *id);
    }
    // A bad row's e-mail still names someone in this file: do not report their staff twice.
    let named_in_file: std::collections::HashSet<String> = text
        .lines()
        .filter_map(|line| line.split(',').next())
        .filter_map(|cell| Email::parse(cell).ok())
        .map(|e| e.to_string())
        .collect();
    for row in &rows {
        if let Some(manager) = &row.line_manager_email
            && !managers.contains_key(manager.as_ref())
            && !named_in_file.contains(manager.as_ref())
        {
            errors.push(RowError {
                line: row.line,
                message: format!("the line manager {manager} is neither in this school nor in this file"),
            });
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(ImportError::Rows(errors));
    }
    let mut hashes = Vec::with_capacity(rows.len());
    for row in &rows {
        hashes.push(password::hash(row.password.clone()).await.map_err(ApiError::from)?);
    }
    let mut tx = db.begin().await.map_err(ApiError::from)?;
    // Everyone first, then line managers, so a manager may appear later in the file than their staff.
    for ((row, id), hash) in rows.iter().zip(&ids).zip(hashes) {
        let user = users::NewUser {
            id: *id,
            school_id,
            email: row.email.to_string(),
            name: row.name.clone(),
            password_hash: hash,
            roles: row.roles.clone(),
            line_manager_id: None,
            phone: None,
        };
        users::insert(&mut tx, &user, now.timestamp_millis()).await.map_err(|e| match e {
            ApiError::Conflict { message, .. } => ImportError::Rows(vec![RowError { line: row.line, message }]),
            other => ImportError::Failed(other),
        })?;
    }
    for (row, id) in rows.iter().zip(&ids) {
        if let Some(manager) = &row.line_manager_email {
            sqlx::query("update users set line_manager_id = $1 where user_id = $2")
                .bind(managers[manager.as_ref()].to_string())
                .bind(id.to_string())
                .execute(tx.conn())
                .await
                .map_err(ApiError::from)?;
        }
        audit::append(
            &mut tx,
            audit::Action {
                school_id,
                actor_id,
                action: "user.imported",
                subject: format!("user:{id}"),
                detail: format!("{} ({})", row.email, users::encode_roles(&row.roles)),
                at: now,
            },
        )
        .await?;
    }
    tx.commit().await.map_err(ApiError::from)?;
    let mut imported = Vec::with_capacity(ids.len());
    for id in ids {
        imported.extend(users::get(&db.pool, id).await?);
    }
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let text = "email,name,roles,line_manager_email,password\n\
                    ok@school.test,Ok Person,staff,,long-enough-pw\n\
                    not-an-email,Bad Email,staff,,long-enough-pw\n\
                    x@school.test,,staff,,long-enough-pw\n\
                    y@school.test,Y,boss,,long-enough-pw\n\
                    z@school.test,Z,staff,,short\n\
                    ok@school.test,Twice,staff,,long-enough-pw\n";
        let errors = parse(text).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7], "{errors:?}");
        assert!(errors[0].message.contains("not an e-mail"));
        assert!(errors[2].message.contains("boss"));
        assert!(errors[3].message.contains("10 characters"));
        assert!(errors[4].message.contains("line 2"));
    }

    #[test]
    fn wrong_header_is_line_one() {
        let errors = parse("mail,name\na@b.com,x\n").unwrap_err();
        assert_eq!(errors[0].line, 1);
    }

    #[test]
    fn good_file_parses() {
        let rows =
            parse("email,name,roles,line_manager_email,password\na@s.test,A,staff;leader,b@s.test,long-enough-pw\n")
                .unwrap();
        assert_eq!(rows[0].roles, vec![Role::Staff, Role::Leader]);
        assert_eq!(rows[0].line, 2);
    }
}
