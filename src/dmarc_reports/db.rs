//! The report database: an embedded SQLite file (`sqlite:PATH`) or a PostgreSQL server
//! (`postgres://...`), behind one small interface, with one SQL text for both (positional
//! `$1` parameters, `INSERT ... ON CONFLICT`, which both speak). The schema is made and
//! migrated here, in [`Db::open`].

use super::ReportError;

/// The schema this program makes. A database of a later version is refused.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The default database.
pub const DEFAULT_URL: &str = "sqlite:/var/qmail/dmarc/reports.sqlite";

/// A parameter or a column value: the schema has only these two types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(String),
    Int(i64),
}

impl Value {
    pub(crate) fn text(&self) -> &str {
        match self {
            Value::Text(s) => s,
            Value::Int(_) => "",
        }
    }
    pub(crate) fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            Value::Text(_) => 0,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

/// Each table's statement; `IF NOT EXISTS` makes them the migration from nothing to version 1.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS dmarc_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    // One RFC 9990 row a day and policy domain: `row_key` is the row's spool text (source,
    // identifiers, results, disposition), `policy` the policy part last seen with it.
    "CREATE TABLE IF NOT EXISTS dmarc_rows (day TEXT NOT NULL, policy_domain TEXT NOT NULL, \
     row_key TEXT NOT NULL, policy TEXT NOT NULL, count BIGINT NOT NULL, last_seen BIGINT NOT NULL, \
     PRIMARY KEY (day, policy_domain, row_key))",
    // The spool files counted, so that a file whose removal did not happen is not counted again.
    "CREATE TABLE IF NOT EXISTS dmarc_imported (name TEXT PRIMARY KEY, day TEXT NOT NULL)",
    // What was sent, claimed before sending: a report goes to a destination once.
    "CREATE TABLE IF NOT EXISTS dmarc_sent (day TEXT NOT NULL, policy_domain TEXT NOT NULL, \
     destination TEXT NOT NULL, report_id TEXT NOT NULL, sent_at BIGINT NOT NULL, \
     PRIMARY KEY (day, policy_domain, destination))",
];

/// The PostgreSQL advisory lock keys: the migration, and the sender.
const LOCK_MIGRATE: i64 = 0x444d_4152_4301;
const LOCK_SEND: i64 = 0x444d_4152_4302;

impl Db {
    /// Connects (creating an SQLite file and its directory's file, not its directory) and makes
    /// or migrates the schema.
    pub fn open(url: &str) -> Result<Db, ReportError> {
        let mut db = if let Some(path) = url.strip_prefix("sqlite:") {
            let c = rusqlite::Connection::open(path).map_err(|e| ReportError::new(format!("{path}: {e}")))?;
            // Several imports or a report at once wait for each other rather than fail.
            c.busy_timeout(std::time::Duration::from_secs(60))?;
            c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
            Db::Sqlite(c)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let c = postgres::Client::connect(url, postgres::NoTls)
                .map_err(|e| ReportError::new(format!("{}: {e}", redact(url))))?;
            Db::Postgres(Box::new(c))
        } else {
            return Err(ReportError::new(format!("{}: the database is sqlite:PATH or postgres://...", redact(url))));
        };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), ReportError> {
        self.begin()?;
        if let Db::Postgres(c) = self {
            // Two hosts starting at once must not both create the tables.
            c.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])?;
        }
        for s in SCHEMA {
            self.exec(s, &[])?;
        }
        let v = self.query("SELECT value FROM dmarc_meta WHERE name = 'schema'", &[])?;
        match v.first().map(|r| r[0].text().parse::<i64>()) {
            None => {
                self.exec(
                    "INSERT INTO dmarc_meta (name, value) VALUES ('schema', $1)",
                    &[SCHEMA_VERSION.to_string().into()],
                )?;
            }
            Some(Ok(n)) if n <= SCHEMA_VERSION => {}
            Some(_) => {
                let _ = self.rollback();
                return Err(ReportError::new(format!(
                    "the database's schema is newer than version {SCHEMA_VERSION}: use the dkim that made it"
                )));
            }
        }
        self.commit()
    }

    pub(crate) fn begin(&mut self) -> Result<(), ReportError> {
        match self {
            // IMMEDIATE: take the write lock now, so two importers queue instead of deadlocking.
            Db::Sqlite(c) => c.execute_batch("BEGIN IMMEDIATE")?,
            Db::Postgres(c) => c.batch_execute("BEGIN")?,
        }
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> Result<(), ReportError> {
        match self {
            Db::Sqlite(c) => c.execute_batch("COMMIT")?,
            Db::Postgres(c) => c.batch_execute("COMMIT")?,
        }
        Ok(())
    }

    pub(crate) fn rollback(&mut self) -> Result<(), ReportError> {
        match self {
            Db::Sqlite(c) => c.execute_batch("ROLLBACK")?,
            Db::Postgres(c) => c.batch_execute("ROLLBACK")?,
        }
        Ok(())
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, ReportError> {
        match self {
            Db::Sqlite(c) => {
                let n = c.execute(sql, rusqlite::params_from_iter(params.iter().map(sqlite_value)))?;
                Ok(n as u64)
            }
            Db::Postgres(c) => {
                let p = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
                Ok(c.execute(sql, &refs)?)
            }
        }
    }

    /// Runs a query whose columns are all TEXT or BIGINT.
    pub(crate) fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, ReportError> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare(sql)?;
                let n = st.column_count();
                let rows = st.query_map(rusqlite::params_from_iter(params.iter().map(sqlite_value)), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                                rusqlite::types::Value::Integer(n) => Value::Int(n),
                                rusqlite::types::Value::Text(s) => Value::Text(s),
                                _ => Value::Text(String::new()),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Value>>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            }
            Db::Postgres(c) => {
                let p = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
                let rows = c.query(sql, &refs)?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match r.try_get::<_, i64>(i) {
                                Ok(n) => Value::Int(n),
                                Err(_) => Value::Text(r.try_get::<_, String>(i).unwrap_or_default()),
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }

    /// Makes this connection the one sender. SQLite: always (its writes are serialized and
    /// each report is claimed before it is sent). PostgreSQL: a session lock; `false` when
    /// another host holds it.
    pub(crate) fn lock_sender(&mut self) -> Result<bool, ReportError> {
        match self {
            Db::Sqlite(_) => Ok(true),
            Db::Postgres(c) => Ok(c.query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_SEND])?.get::<_, bool>(0)),
        }
    }
}

fn sqlite_value(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Int(n) => rusqlite::types::Value::Integer(*n),
    }
}

fn pg_params(params: &[Value]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
            match v {
                Value::Text(s) => Box::new(s.clone()),
                Value::Int(n) => Box::new(*n),
            }
        })
        .collect()
}

/// A URL for messages: without a password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:...{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
