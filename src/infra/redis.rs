//! Redis connections, shared by every service that keeps state there (the session store, the
//! rate limiter, persisted queries, the event relay): one Redis server through a small pool of
//! multiplexed connections, or a Redis Cluster through one cluster connection, which keeps a
//! multiplexed connection per node, sends each command to the node serving its key's slot and
//! follows MOVED/ASK redirections and failovers. [`run`] is the one way to send either a
//! command: bounded in time, and dropping a connection that broke.

use std::sync::Arc;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, ProtocolVersion, RedisFuture, Value};
use tokio::sync::OnceCell;

use super::pool::{self, CheckedPool};
use crate::config::cluster_nodes;

/// Where the server's Redis is: one server, or a cluster.
#[derive(Clone)]
pub enum Redis {
    /// One Redis server: few connections, each multiplexing many requests.
    Single(CheckedPool<RedisConnectionManager>),
    /// A Redis Cluster, connected with the first command.
    Cluster(Arc<Cluster>),
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Redis::Single(pool) => f.debug_tuple("Single").field(pool).finish(),
            Redis::Cluster(_) => f.write_str("Cluster"),
        }
    }
}

/// A Redis Cluster: its client, and the connection made by the first command that needed one
/// (a cluster down at start-up leaves the server up, and `/readyz` says so).
pub struct Cluster {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

impl Cluster {
    /// The cluster connection, made now if there is none yet.
    async fn connection(&self) -> redis::RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

/// A connection to send commands on: a clone of a pooled multiplexed connection, or of the
/// cluster connection. Both pipeline the commands of every request that holds one.
pub enum RedisConnection {
    /// To the one server.
    Single(MultiplexedConnection),
    /// To the cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// A client of the cluster whose nodes are `nodes` (plain node URLs, see
/// [`cluster_nodes`]), speaking `protocol`, each connection and command bounded by `timeout`.
pub fn cluster_client(
    nodes: Vec<String>,
    timeout: Duration,
    protocol: ProtocolVersion,
) -> anyhow::Result<ClusterClient> {
    ClusterClient::builder(nodes)
        .use_protocol(protocol)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()
        .map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))
}

/// Redis at `url`: a pool for a `redis://`, `rediss://` or `redis+unix://` URL, a cluster
/// for a `redis+cluster://` one. Commands wait at most `timeout`. Does not connect yet.
pub fn connect(url: &str, timeout: Duration) -> anyhow::Result<Redis> {
    if let Some(nodes) = cluster_nodes(url) {
        let nodes = nodes.map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?;
        return Ok(Redis::Cluster(Arc::new(Cluster {
            client: cluster_client(nodes, timeout, ProtocolVersion::RESP2)?,
            connection: OnceCell::new(),
        })));
    }
    let manager =
        RedisConnectionManager::new(url).map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    Ok(Redis::Single(CheckedPool::build(
        pool::builder(cores.max(2), timeout),
        manager,
    )))
}

/// One node of a Redis Cluster as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterNode {
    /// `host:port`.
    pub node: String,
    /// `master` or `replica`.
    pub role: &'static str,
    /// `ok`, or `down` when the cluster marks it failing (`fail`, `fail?`) or has lost its
    /// link to it.
    pub state: &'static str,
}

/// Every node of the cluster and its state, from `CLUSTER NODES` asked of one node; `None`
/// for a single Redis server.
pub async fn cluster_state(
    redis: &Redis,
    timeout: Duration,
) -> Option<anyhow::Result<Vec<ClusterNode>>> {
    let Redis::Cluster(_) = redis else {
        return None;
    };
    let text = run(redis, timeout, async |c| {
        redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async::<String>(c)
            .await
    })
    .await;
    Some(text.map(|text| parse_cluster_nodes(&text)))
}

/// Reads `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent>
/// <pong-recv> <epoch> <link-state> <slot>…`, one node per line.
fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    let mut nodes: Vec<ClusterNode> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, flags, link) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
            let node = address.split(['@', ',']).next()?.to_owned();
            let flags: Vec<&str> = flags.split(',').collect();
            let role = if flags.contains(&"master") {
                "master"
            } else {
                "replica"
            };
            let failing = flags
                .iter()
                .any(|f| matches!(*f, "fail" | "fail?" | "noaddr"));
            let state = if failing || *link != "connected" {
                "down"
            } else {
                "ok"
            };
            Some(ClusterNode { node, role, state })
        })
        .collect();
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    nodes
}

/// Times [`query`] sends a pipeline to a cluster that redirected it before giving up.
const CLUSTER_ATTEMPTS: u32 = 4;

/// Runs `op` on a connection of `redis` within `timeout`. A pooled connection that failed at
/// the transport level is dropped from the pool (the cluster connection repairs its own).
/// Every failure (no connection, a command error, no answer in time) is returned as the cause
/// for the caller to name.
pub async fn run<T, F>(redis: &Redis, timeout: Duration, op: F) -> anyhow::Result<T>
where
    F: AsyncFnOnce(&mut RedisConnection) -> redis::RedisResult<T>,
{
    let work = async {
        match redis {
            Redis::Single(pool) => {
                // A multiplexed connection pipelines the commands of every request that holds
                // a clone of it, so none is held exclusively: requests would otherwise queue
                // for the pool's few connections (bench/RESULTS.md has the measurement).
                let (conn, broken) = pool.get_shared().await?;
                let mut conn = RedisConnection::Single(conn);
                let result = op(&mut conn).await;
                if let Err(e) = &result
                    && (e.is_io_error()
                        || e.is_connection_dropped()
                        || e.is_unrecoverable_error()
                        || e.is_timeout())
                {
                    broken.mark();
                }
                Ok(result?)
            }
            Redis::Cluster(cluster) => {
                let mut conn = RedisConnection::Cluster(cluster.connection().await?);
                Ok(op(&mut conn).await?)
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow::anyhow!("redis did not answer in time"))?
}

/// Sends `pipe` to `redis` as [`run`] does, within `timeout` in all. On a cluster, a
/// transaction turned away by a node that no longer serves its slot (see [`redirected`]) is
/// sent again, a little later, when the client has learnt where the slot went.
pub async fn query<T: redis::FromRedisValue>(
    redis: &Redis,
    timeout: Duration,
    pipe: &redis::Pipeline,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempt = 1;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let result = run(redis, left, async |c| pipe.query_async(c).await).await;
        match result {
            Err(e)
                if matches!(redis, Redis::Cluster(_))
                    && attempt < CLUSTER_ATTEMPTS
                    && e.downcast_ref::<redis::RedisError>()
                        .is_some_and(redirected) =>
            {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Whether a cluster turned the operation away because its slot lives, or is moving,
/// elsewhere. The client follows such a redirection for a single command, but a transaction
/// (MULTI … EXEC) comes back aborted with one per command: after a failover, the first one
/// sent to a node that no longer serves the slot. None of an aborted transaction's commands
/// ran, so running it again once the client has learnt the new slot map is safe.
fn redirected(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    let moved = |kind: Option<ServerErrorKind>| {
        matches!(
            kind,
            Some(
                ServerErrorKind::Moved
                    | ServerErrorKind::Ask
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
            )
        )
    };
    // The client has retried anything else itself, and a plain pipeline's other commands may
    // have run: only an aborted transaction (its EXEC answered EXECABORT, in an atomic
    // pipeline or after a MULTI of our own) is sent again.
    let aborted = e.kind() == ErrorKind::Server(ServerErrorKind::ExecAbort);
    e.clone().into_server_errors().is_some_and(|errors| {
        errors.iter().any(|(_, error)| moved(error.kind()))
            && (aborted
                || errors
                    .iter()
                    .any(|(_, error)| error.kind() == Some(ServerErrorKind::ExecAbort)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_read_with_their_role_and_state() {
        let text = "\
07c3 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922
67ed 127.0.0.1:7000@17000,host.example myself,master - 0 0 1 connected 0-5460
292f 127.0.0.1:7004@17004 slave 07c3 0 1 2 connected
e7d1 127.0.0.1:7005@17005 slave,fail 67ed 1 1 1 disconnected
";
        let state = |node: &str| {
            parse_cluster_nodes(text)
                .into_iter()
                .find(|n| n.node == node)
                .map(|n| (n.role, n.state))
        };
        assert_eq!(parse_cluster_nodes(text).len(), 4);
        assert_eq!(state("127.0.0.1:7000"), Some(("master", "ok")));
        assert_eq!(state("127.0.0.1:7004"), Some(("replica", "ok")));
        assert_eq!(state("127.0.0.1:7005"), Some(("replica", "down")));
    }
}
