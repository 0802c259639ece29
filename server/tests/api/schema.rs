//! Both engines' migrations describe one schema: the same tables, columns (and whether each
//! may be null), primary keys, unique constraints, foreign keys, CHECK constraints' allowed
//! values, and indexes. Types differ only as the dialects do (`INTEGER`/`BIGINT`,
//! `BLOB`/`BYTEA`), so they are not compared. Each engine's own description is read from
//! its catalogue, not from the migration files.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::AnyPool;
use unlock_server::db::{DatabaseUrl, Db};

/// A table as the catalogue describes it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// Column → may it be null.
    columns: BTreeMap<String, bool>,
    primary_key: Vec<String>,
    /// Column lists that must be unique (primary key excluded).
    unique: BTreeSet<Vec<String>>,
    /// (column, referenced table, referenced column, on delete).
    foreign_keys: BTreeSet<(String, String, String, String)>,
    /// Column → the quoted values its CHECK allows.
    checks: BTreeMap<String, BTreeSet<String>>,
    /// Index name → its columns.
    indexes: BTreeMap<String, Vec<String>>,
    /// Index name → the rows a partial index holds (its `WHERE`, normalised).
    predicates: BTreeMap<String, String>,
}

type Schema = BTreeMap<String, Table>;

async fn rows(pool: &AnyPool, sql: &str) -> Vec<Vec<String>> {
    use sqlx::Row;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|row| {
            (0..row.columns().len())
                .map(|i| {
                    row.try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect()
}

/// A partial index's condition as both engines can be compared on: PostgreSQL's casts
/// (`'queued'::text`) and brackets dropped, spaces collapsed, lower case.
fn predicate(text: &str) -> String {
    text.replace("::text", "")
        .replace(['(', ')'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The values quoted in a CHECK constraint's text, e.g. `status IN ('a', 'b')`.
fn quoted_values(text: &str) -> BTreeSet<String> {
    text.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

async fn sqlite_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    let tables = rows(
        pool,
        "SELECT name, sql FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'",
    )
    .await;
    for table in tables {
        let (name, sql) = (&table[0], &table[1]);
        let mut t = Table::default();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for column in rows(
            pool,
            &format!("SELECT name, \"notnull\", pk FROM pragma_table_info('{name}')"),
        )
        .await
        {
            t.columns.insert(column[0].clone(), column[1] == "0");
            let position: i64 = column[2].parse().unwrap();
            if position > 0 {
                pk.push((position, column[0].clone()));
            }
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        // SQLite (for old programs' sake) lets a primary key that is not an INTEGER hold
        // NULL unless NOT NULL is written too; PostgreSQL never does. No statement of ours
        // writes one, so a key column counts as not null here.
        for column in &t.primary_key {
            t.columns.insert(column.clone(), false);
        }
        for fk in rows(
            pool,
            &format!("SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list('{name}')"),
        )
        .await
        {
            t.foreign_keys
                .insert((fk[0].clone(), fk[1].clone(), fk[2].clone(), fk[3].clone()));
        }
        for index in rows(
            pool,
            &format!("SELECT name, \"unique\", origin FROM pragma_index_list('{name}')"),
        )
        .await
        {
            let columns: Vec<String> = rows(
                pool,
                &format!(
                    "SELECT name FROM pragma_index_info('{}') ORDER BY seqno",
                    index[0]
                ),
            )
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
            match index[2].as_str() {
                "pk" => {}
                "u" => {
                    t.unique.insert(columns);
                }
                _ => {
                    t.indexes.insert(index[0].clone(), columns);
                }
            }
        }
        for index in rows(
            pool,
            &format!("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = '{name}' AND sql LIKE '% WHERE %'"),
        )
        .await
        {
            if let Some((_, condition)) = index[1].split_once(" WHERE ") {
                t.predicates.insert(index[0].clone(), predicate(condition));
            }
        }
        // CHECK constraints sit in the CREATE TABLE text (and ALTER TABLE ADD COLUMN's).
        for line in sql.split('\n') {
            if let Some(at) = line.find("CHECK (") {
                let column = line[at + 7..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let column = if t.columns.contains_key(&column) {
                    column
                } else {
                    line.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                };
                t.checks.insert(column, quoted_values(&line[at..]));
            }
        }
        schema.insert(name.clone(), t);
    }
    schema
}

async fn postgres_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    for column in rows(
        pool,
        "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name != '_sqlx_migrations'",
    )
    .await
    {
        schema
            .entry(column[0].clone())
            .or_default()
            .columns
            .insert(column[1].clone(), column[2] == "YES");
    }
    // Constraints: p(rimary), u(nique), f(oreign), c(heck), with their columns in order.
    for constraint in rows(
        pool,
        "SELECT c.conrelid::regclass::text, c.contype::text, c.conname::text,
                pg_get_constraintdef(c.oid),
                (SELECT string_agg(a.attname::text, ',' ORDER BY k.n)
                 FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
                COALESCE(c.confrelid::regclass::text, ''),
                COALESCE((SELECT string_agg(a.attname::text, ',')
                 FROM unnest(c.confkey) AS k(attnum)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum), ''),
                c.confdeltype::text
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = 'public' AND c.conrelid::regclass::text != '_sqlx_migrations'",
    )
    .await
    {
        let t = schema.entry(constraint[0].clone()).or_default();
        let columns: Vec<String> = constraint[4].split(',').map(str::to_owned).collect();
        match constraint[1].as_str() {
            "p" => t.primary_key = columns,
            "u" => {
                t.unique.insert(columns);
            }
            "f" => {
                let on_delete = match constraint[7].as_str() {
                    "c" => "CASCADE",
                    "n" => "SET NULL",
                    "d" => "SET DEFAULT",
                    "r" => "RESTRICT",
                    _ => "NO ACTION",
                };
                t.foreign_keys.insert((
                    columns[0].clone(),
                    constraint[5].clone(),
                    constraint[6].clone(),
                    on_delete.into(),
                ));
            }
            "c" => {
                t.checks
                    .insert(columns[0].clone(), quoted_values(&constraint[3]));
            }
            _ => {}
        }
    }
    for index in rows(
        pool,
        "SELECT i.indrelid::regclass::text, c.relname::text,
                (SELECT string_agg(a.attname::text, ',' ORDER BY k.n)
                 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum),
                COALESCE(pg_get_expr(i.indpred, i.indrelid), '')
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND NOT i.indisprimary
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
           AND i.indrelid::regclass::text != '_sqlx_migrations'",
    )
    .await
    {
        let table = schema.entry(index[0].clone()).or_default();
        table.indexes.insert(
            index[1].clone(),
            index[2].split(',').map(str::to_owned).collect(),
        );
        if !index[3].is_empty() {
            table
                .predicates
                .insert(index[1].clone(), predicate(&index[3]));
        }
    }
    schema
}

#[tokio::test]
async fn both_engines_migrate_to_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("schema.db").display());
    let sqlite = Db::connect(&DatabaseUrl::parse(&sqlite_url).unwrap())
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let postgres_url = unlock_testkit::postgres::shared().create_database();
    let postgres = Db::connect(&DatabaseUrl::parse(&postgres_url).unwrap())
        .await
        .unwrap();
    postgres.migrate().await.unwrap();

    let (on_sqlite, on_postgres) = (
        sqlite_schema(sqlite.pool()).await,
        postgres_schema(postgres.pool()).await,
    );
    assert_eq!(
        on_sqlite.keys().collect::<Vec<_>>(),
        on_postgres.keys().collect::<Vec<_>>(),
        "tables"
    );
    for (name, table) in &on_sqlite {
        assert_eq!(Some(table), on_postgres.get(name), "table {name}");
    }
    // The comparison sees what matters: every table has columns, the checks were found.
    assert!(on_sqlite["journeys"].checks.contains_key("state"));
    assert!(on_sqlite["journeys"].checks.contains_key("closed_reason"));
    assert!(on_sqlite["outbox"].indexes.contains_key("outbox_due"));
    assert_eq!(
        on_sqlite["outbox"]
            .predicates
            .get("outbox_due")
            .map(String::as_str),
        Some("state = 'queued'")
    );
    sqlite.close().await;
    postgres.close().await;
}

#[tokio::test]
async fn the_audit_table_refuses_changes_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        format!("sqlite://{}", dir.path().join("audit.db").display()),
        unlock_testkit::postgres::shared().create_database(),
    ];
    for url in urls {
        let db = Db::connect(&DatabaseUrl::parse(&url).unwrap())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        sqlx::query("INSERT INTO audit_events (at, actor, action, outcome) VALUES (1, 'system', 'test', 'done')")
            .execute(db.pool())
            .await
            .unwrap();
        for change in [
            "UPDATE audit_events SET outcome = 'changed'",
            "DELETE FROM audit_events",
        ] {
            let error = sqlx::query(change).execute(db.pool()).await.unwrap_err();
            assert!(error.to_string().contains("append-only"), "{url}: {error}");
        }
        if db.engine() == unlock_server::db::Engine::Postgres {
            let error = sqlx::query("TRUNCATE audit_events")
                .execute(db.pool())
                .await
                .unwrap_err();
            assert!(error.to_string().contains("append-only"), "{error}");
        }
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 1);
        db.close().await;
    }
}
