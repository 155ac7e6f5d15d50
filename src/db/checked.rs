//! A bb8 connection manager wrapper that lets the code using a connection mark it broken.
//!
//! Pinging every connection on checkout costs a round trip per request, so the pools skip it;
//! instead, a connection whose query failed in a way that suggests it is dead is marked here and
//! bb8 drops it instead of handing it out again. Used by the database and the Redis pools alike.

use bb8::ManageConnection;

/// Wraps a manager so its connections can be marked broken.
#[derive(Debug, Clone)]
pub struct Checked<M>(pub M);

/// A pooled connection and whether its user found it broken.
#[derive(Debug)]
pub struct CheckedConn<C> {
    /// The driver's connection.
    pub conn: C,
    broken: bool,
}

impl<C> CheckedConn<C> {
    /// Makes the pool drop this connection when it is returned.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl<M: ManageConnection> ManageConnection for Checked<M> {
    type Connection = CheckedConn<M::Connection>;
    type Error = M::Error;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let conn = self.0.connect().await?;
        Ok(CheckedConn {
            conn,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.0.is_valid(&mut conn.conn).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken || self.0.has_broken(&mut conn.conn)
    }
}
