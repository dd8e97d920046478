//! Operators as the pages and the API's messages name them: by display name (门卫 李师傅),
//! never by user name. Events, alarms, duty records and audit entries carry the user name (or
//! the operator's id); the pages look the display name up here when they render.
//!
//! What it never does: show a user name when the operator has a display name, or fail a page
//! when an operator was since deleted (the recorded name stands).

use std::collections::HashMap;

use crate::central::db::{Db, RepoError};

/// What to show for an operator: the display name, or the user name when it is empty.
pub fn shown<'a>(display_name: &'a str, username: &'a str) -> &'a str {
    if display_name.trim().is_empty() {
        username
    } else {
        display_name
    }
}

/// Every operator's display name, by user name and by id, loaded once per page.
#[derive(Debug, Clone, Default)]
pub struct Names {
    by_username: HashMap<String, String>,
    by_id: HashMap<i64, String>,
}

impl Names {
    /// Loads every operator's name.
    pub async fn load(db: &Db) -> Result<Names, RepoError> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, username, display_name FROM operators")
                .fetch_all(db.pool())
                .await?;
        let mut names = Names::default();
        for (id, username, display_name) in rows {
            let name = shown(&display_name, &username).to_string();
            names.by_id.insert(id, name.clone());
            names.by_username.insert(username, name);
        }
        Ok(names)
    }

    /// The display name of the operator with user name `username` (recorded in an event or
    /// an alarm); `username` itself when unknown ("system", a deleted operator).
    pub fn of<'a>(&'a self, username: &'a str) -> &'a str {
        self.by_username
            .get(username)
            .map_or(username, String::as_str)
    }

    /// The display name of operator `id`, if known.
    pub fn of_id(&self, id: i64) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }
}
