//! What `holder_emails` and `holder_mobiles` share: each is a table of contacts on holders'
//! profiles, keyed by the contact, with the same columns for who added and approved it. A
//! contact is on at most one profile; the primary key says so, and adding relies on it
//! rather than on a look-up first.

use anyhow::Context;
use sqlx::AssertSqlSafe;

use super::Conn;
use super::holder_emails::{Added, Approval};
use crate::clock::Millis;

/// One table of contacts: its name, its key column and what a row is called in errors.
/// Only these constants name tables, so the SQL built from them is fixed text.
pub(super) struct Contacts {
    table: &'static str,
    column: &'static str,
    noun: &'static str,
}

pub(super) const EMAILS: Contacts = Contacts {
    table: "holder_emails",
    column: "email",
    noun: "address",
};

pub(super) const MOBILES: Contacts = Contacts {
    table: "holder_mobiles",
    column: "number",
    noun: "mobile number",
};

impl Contacts {
    /// Adds `contact` to `holder`'s profile unless some profile has it already; with
    /// `awaiting_approval`, it starts no journey until a second RA approves it.
    pub(super) async fn add(
        &self,
        conn: &mut Conn,
        contact: &str,
        holder: &str,
        at: Millis,
        by: &str,
        awaiting_approval: bool,
    ) -> anyhow::Result<Added> {
        let Self {
            table,
            column,
            noun,
        } = self;
        let sql = format!(
            "INSERT INTO {table} ({column}, holder_id, added_at, added_by, awaiting_approval_since)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT ({column}) DO NOTHING RETURNING {column}"
        );
        let inserted: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(contact)
            .bind(holder)
            .bind(at)
            .bind(by)
            .bind(awaiting_approval.then_some(at))
            .fetch_optional(&mut *conn)
            .await
            .with_context(|| format!("add the {noun} to the profile"))?;
        if inserted.is_some() {
            return Ok(Added::Added);
        }
        let owner = self
            .owner_of(conn, contact)
            .await?
            .with_context(|| format!("a {noun} that was taken has no owner"))?;
        Ok(Added::Taken { owner })
    }

    /// Whose profile `contact` is on.
    pub(super) async fn owner_of(
        &self,
        conn: &mut Conn,
        contact: &str,
    ) -> anyhow::Result<Option<String>> {
        let Self {
            table,
            column,
            noun,
        } = self;
        let sql = format!("SELECT holder_id FROM {table} WHERE {column} = $1");
        sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(contact)
            .fetch_optional(conn)
            .await
            .with_context(|| format!("look the {noun} up"))
    }

    /// The contacts on `holder`'s profile, in order.
    pub(super) async fn of_holder(
        &self,
        conn: &mut Conn,
        holder: &str,
    ) -> anyhow::Result<Vec<String>> {
        let Self {
            table,
            column,
            noun,
        } = self;
        let sql = format!("SELECT {column} FROM {table} WHERE holder_id = $1 ORDER BY {column}");
        sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(holder)
            .fetch_all(conn)
            .await
            .with_context(|| format!("read the holder's {noun}s"))
    }

    /// Lets `contact`, waiting on `holder`'s profile, start journeys, if `by` is not who
    /// added it (decided in one statement on the row as it stands).
    pub(super) async fn approve(
        &self,
        conn: &mut Conn,
        contact: &str,
        holder: &str,
        by: &str,
        at: Millis,
    ) -> anyhow::Result<Approval> {
        let Self {
            table,
            column,
            noun,
        } = self;
        let sql = format!(
            "UPDATE {table} SET awaiting_approval_since = NULL, approved_by = $3, approved_at = $4
             WHERE {column} = $1 AND holder_id = $2 AND awaiting_approval_since IS NOT NULL
               AND added_by <> $3
             RETURNING {column}"
        );
        let approved: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(contact)
            .bind(holder)
            .bind(by)
            .bind(at)
            .fetch_optional(&mut *conn)
            .await
            .with_context(|| format!("approve the {noun}"))?;
        if approved.is_some() {
            return Ok(Approval::Approved);
        }
        let sql = format!(
            "SELECT added_by, awaiting_approval_since FROM {table}
             WHERE {column} = $1 AND holder_id = $2"
        );
        let row: Option<(String, Option<Millis>)> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(contact)
            .bind(holder)
            .fetch_optional(conn)
            .await
            .with_context(|| format!("read the {noun}"))?;
        Ok(match row {
            None => Approval::NotOnProfile,
            Some((_, None)) => Approval::NotWaiting,
            Some(_) => Approval::SameStaff,
        })
    }

    /// Removes `contact` from `holder`'s profile; whether it was there.
    pub(super) async fn remove(
        &self,
        conn: &mut Conn,
        contact: &str,
        holder: &str,
    ) -> anyhow::Result<bool> {
        let Self {
            table,
            column,
            noun,
        } = self;
        let sql = format!("DELETE FROM {table} WHERE {column} = $1 AND holder_id = $2");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(contact)
            .bind(holder)
            .execute(conn)
            .await
            .with_context(|| format!("remove the {noun}"))?;
        Ok(done.rows_affected() > 0)
    }
}
