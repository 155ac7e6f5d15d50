//! A bb8 connection manager wrapper that lets the code using a connection mark it broken, and
//! a pool around it that stops waiting as soon as a connection attempt fails.
//!
//! Pinging every connection on checkout costs a round trip per request, so the pools skip it;
//! instead, a connection whose query failed in a way that suggests it is dead is marked here and
//! bb8 drops it instead of handing it out again. Used by the database and the Redis pools alike.
//!
//! bb8 does not tell a waiting `get()` that the connection attempt made for it failed: the
//! error goes to the pool's error sink and the caller waits out the whole connection time-out.
//! While the server is down every request would then take `POOL_TIMEOUT` to fail, and requests
//! already waiting when it comes back would still time out, since nothing wakes them.
//! [`CheckedPool::get`] instead fails as soon as an attempt fails (the caller answers 503), and
//! the next request's attempt finds the server again.
//!
//! bb8 does not serve its waiters in turn either: a connection handed back wakes the oldest
//! waiter, but a request arriving before that waiter runs takes the connection first, and the
//! woken one waits again at the back of the queue. Under load some requests lose that race
//! several times in a row, which makes a latency tail (bench/RESULTS.md has the profile). So
//! [`CheckedPool::get`] first takes a turn from a FIFO semaphore with one permit per
//! connection: only requests holding a turn ask bb8, so none can be overtaken there.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bb8::{ManageConnection, PooledConnection};
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

/// Wraps a manager so its connections can be marked broken and its failed connection attempts
/// are announced to the requests waiting for a connection.
#[derive(Debug, Clone)]
pub struct Checked<M> {
    manager: M,
    failures: Arc<ConnectFailures>,
}

/// Announces failed connection attempts, and keeps the last one's error for the log.
#[derive(Debug, Default)]
struct ConnectFailures {
    notify: Notify,
    last: Mutex<String>,
}

/// A pooled connection, whether its user found it broken, and whether an exchange with the
/// server was left unfinished on it.
#[derive(Debug)]
pub struct CheckedConn<C> {
    /// The driver's connection.
    pub conn: C,
    broken: BrokenFlag,
    in_flight: bool,
}

/// Marks one pooled connection broken, also from a clone of it used after its guard went
/// back to the pool (see [`CheckedPool::get_shared`]).
#[derive(Debug, Clone, Default)]
pub struct BrokenFlag(Arc<AtomicBool>);

impl BrokenFlag {
    /// The pool drops the connection instead of handing it out again.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl<C> CheckedConn<C> {
    /// Makes the pool drop this connection when it is returned.
    pub fn mark_broken(&mut self) {
        self.broken.mark();
    }

    /// Marks the start of an exchange that must run to its end: until [`finished`] is called,
    /// the pool treats the connection as broken.
    ///
    /// A request whose client hangs up is dropped wherever it is waiting, and a MySQL
    /// connection dropped in the middle of reading an answer keeps the unread rest of it: the
    /// next query on it would fail to parse, or read the rows meant for the query before it.
    /// Seen under a login flood as "buf doesn't have enough data" and as a correct password
    /// refused. So a connection whose exchange did not finish is discarded, never reused.
    ///
    /// [`finished`]: CheckedConn::finished
    pub fn start(&mut self) {
        self.in_flight = true;
    }

    /// Marks the end of the exchange begun by [`start`](CheckedConn::start).
    pub fn finished(&mut self) {
        self.in_flight = false;
    }
}

impl<M: ManageConnection> ManageConnection for Checked<M> {
    type Connection = CheckedConn<M::Connection>;
    type Error = M::Error;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        match self.manager.connect().await {
            Ok(conn) => Ok(CheckedConn {
                conn,
                broken: BrokenFlag::default(),
                in_flight: false,
            }),
            Err(e) => {
                if let Ok(mut last) = self.failures.last.lock() {
                    *last = format!("{e:?}");
                }
                self.failures.notify.notify_waiters();
                Err(e)
            }
        }
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.manager.is_valid(&mut conn.conn).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken.is_set() || conn.in_flight || self.manager.has_broken(&mut conn.conn)
    }
}

/// Why no connection could be checked out.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError<E: std::error::Error + 'static> {
    /// The pool's own failure (its time-out ran out).
    #[error(transparent)]
    Pool(#[from] bb8::RunError<E>),
    /// A connection attempt failed while the request waited: the server cannot be reached.
    #[error("cannot connect: {0}")]
    ConnectFailed(String),
}

/// The bb8 settings a [`CheckedPool`] is meant for: at most `size` connections, `timeout` for
/// a checkout, no ping on checkout (see the module's comment) and no retrying a failed connect
/// (the request waiting for it answers 503 at once instead, see [`CheckedPool::get`]).
pub fn builder<M: ManageConnection>(size: u32, timeout: Duration) -> bb8::Builder<Checked<M>> {
    bb8::Pool::builder()
        .max_size(size)
        .connection_timeout(timeout)
        .retry_connection(false)
        .test_on_check_out(false)
}

/// A bb8 pool of [`Checked`] connections whose [`get`](CheckedPool::get) fails fast and
/// serves waiting requests in the order they came.
#[derive(Debug)]
pub struct CheckedPool<M: ManageConnection> {
    pool: bb8::Pool<Checked<M>>,
    failures: Arc<ConnectFailures>,
    /// One permit per connection the pool may hold; tokio's semaphore queues its waiters FIFO.
    turns: Arc<Semaphore>,
    timeout: Duration,
}

impl<M: ManageConnection> Clone for CheckedPool<M> {
    fn clone(&self) -> Self {
        CheckedPool {
            pool: self.pool.clone(),
            failures: self.failures.clone(),
            turns: self.turns.clone(),
            timeout: self.timeout,
        }
    }
}

/// A connection checked out of a [`CheckedPool`], with the turn that let it be taken.
pub struct Checkout<'a, M: ManageConnection> {
    // Fields drop in order: the connection is back in the pool (or closed, if broken) before
    // the turn passes to the next waiter.
    pooled: PooledConnection<'a, Checked<M>>,
    _turn: SemaphorePermit<'a>,
}

impl<M: ManageConnection> std::fmt::Debug for Checkout<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout").finish_non_exhaustive()
    }
}

impl<M: ManageConnection> Deref for Checkout<'_, M> {
    type Target = CheckedConn<M::Connection>;

    fn deref(&self) -> &Self::Target {
        &self.pooled
    }
}

impl<M: ManageConnection> DerefMut for Checkout<'_, M> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.pooled
    }
}

impl<M: ManageConnection> CheckedPool<M>
where
    M::Error: std::error::Error,
{
    /// Builds the pool from `builder` without connecting.
    pub fn build(builder: bb8::Builder<Checked<M>>, manager: M) -> Self {
        let failures = Arc::new(ConnectFailures::default());
        let pool = builder.build_unchecked(Checked {
            manager,
            failures: failures.clone(),
        });
        let config = pool.config();
        CheckedPool {
            pool,
            failures,
            turns: Arc::new(Semaphore::new(config.max_size as usize)),
            timeout: config.connection_timeout,
        }
    }

    /// A connection: an idle one at once, else a new or returned one, in the order the
    /// requests asked; fails as soon as a connection attempt fails while waiting, and after
    /// the pool's time-out at the latest.
    pub async fn get(&self) -> Result<Checkout<'_, M>, CheckoutError<M::Error>> {
        self.fail_fast(async {
            let turn = self.take_turn().await?;
            let pooled = self.pool.get().await.map_err(CheckoutError::Pool)?;
            Ok(Checkout {
                pooled,
                _turn: turn,
            })
        })
        .await
    }

    /// A clone of a pooled connection, for connections that carry many requests at once (a
    /// Redis multiplexed connection): the pool's guard goes back at once, so requests share
    /// the connection instead of queueing for it, and the flag marks the pooled original
    /// broken when the clone fails. One marked while idle is discarded here, at checkout.
    pub async fn get_shared(&self) -> Result<(M::Connection, BrokenFlag), CheckoutError<M::Error>>
    where
        M::Connection: Clone,
    {
        self.fail_fast(async {
            let _turn = self.take_turn().await?;
            loop {
                let guard = self.pool.get().await.map_err(CheckoutError::Pool)?;
                if !guard.broken.is_set() {
                    return Ok((guard.conn.clone(), guard.broken.clone()));
                }
                // Dropping the guard hands the connection back and the pool, seeing it broken,
                // closes it; still in its turn, the loop takes another one or opens a new one.
            }
        })
        .await
    }

    async fn take_turn(&self) -> Result<SemaphorePermit<'_>, CheckoutError<M::Error>> {
        // The semaphore is never closed, so this cannot fail; were it closed, no turn would
        // ever come, which is what a time-out says.
        self.turns
            .acquire()
            .await
            .map_err(|_| CheckoutError::Pool(bb8::RunError::TimedOut))
    }

    /// Runs `checkout` within the pool's time-out (the wait for a turn included), and ends it
    /// as soon as a connection attempt fails.
    async fn fail_fast<T>(
        &self,
        checkout: impl Future<Output = Result<T, CheckoutError<M::Error>>>,
    ) -> Result<T, CheckoutError<M::Error>> {
        // Registered before `checkout` first runs, so a failure during the wait is not missed.
        let failed = self.failures.notify.notified();
        tokio::select! {
            biased;
            result = tokio::time::timeout(self.timeout, checkout) => {
                result.unwrap_or(Err(CheckoutError::Pool(bb8::RunError::TimedOut)))
            }
            () = failed => Err(CheckoutError::ConnectFailed(
                self.failures.last.lock().map(|last| last.clone()).unwrap_or_default(),
            )),
        }
    }

    /// Connections in use and idle.
    pub fn state(&self) -> bb8::State {
        self.pool.state()
    }

    /// The pool's size.
    pub fn max_size(&self) -> u32 {
        self.pool.config().max_size
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// Connects while `up` is set, else fails as a refused TCP connection would.
    #[derive(Debug, Clone)]
    struct Flaky {
        up: Arc<AtomicBool>,
    }

    impl ManageConnection for Flaky {
        type Connection = ();
        type Error = std::io::Error;

        async fn connect(&self) -> Result<(), std::io::Error> {
            if self.up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(std::io::ErrorKind::ConnectionRefused.into())
            }
        }

        async fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> {
            Ok(())
        }

        fn has_broken(&self, _: &mut ()) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn a_connection_left_mid_exchange_is_discarded() {
        let up = Arc::new(AtomicBool::new(true));
        let pool = CheckedPool::build(builder(1, Duration::from_secs(30)), Flaky { up });

        let mut conn = pool.get().await.unwrap();
        conn.start();
        conn.finished();
        drop(conn);
        assert_eq!(pool.state().connections, 1, "a finished exchange keeps it");

        let mut conn = pool.get().await.unwrap();
        conn.start();
        drop(conn);
        assert_eq!(pool.state().connections, 0, "an unfinished one discards it");

        let mut conn = pool.get().await.unwrap();
        conn.mark_broken();
        drop(conn);
        assert_eq!(pool.state().connections, 0, "so does a broken one");
    }

    /// Hands out connections numbered in the order they were opened.
    #[derive(Debug, Clone, Default)]
    struct Numbered {
        opened: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl ManageConnection for Numbered {
        type Connection = usize;
        type Error = std::io::Error;

        async fn connect(&self) -> Result<usize, std::io::Error> {
            Ok(self.opened.fetch_add(1, Ordering::SeqCst))
        }

        async fn is_valid(&self, _: &mut usize) -> Result<(), std::io::Error> {
            Ok(())
        }

        fn has_broken(&self, _: &mut usize) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn shared_connections_are_reused_until_marked_broken() {
        let pool = CheckedPool::build(builder(1, Duration::from_secs(30)), Numbered::default());

        let (first, flag) = pool.get_shared().await.unwrap();
        // The guard is already back: a second user shares the same connection.
        let (again, _) = pool.get_shared().await.unwrap();
        assert_eq!((first, again), (0, 0));

        flag.mark();
        let (fresh, _) = pool.get_shared().await.unwrap();
        assert_eq!(fresh, 1, "the broken one is replaced");
        assert_eq!(pool.state().connections, 1, "and closed");
    }

    #[tokio::test]
    async fn waiting_requests_get_connections_in_the_order_they_asked() {
        let pool = CheckedPool::build(builder(1, Duration::from_secs(30)), Numbered::default());
        let order = Arc::new(Mutex::new(Vec::new()));

        let held = pool.get().await.unwrap();
        let mut waiters = Vec::new();
        for name in ["first", "second"] {
            let (pool, order) = (pool.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _conn = pool.get().await.unwrap();
                order.lock().unwrap().push(name);
            }));
            // Lets the task start waiting before the next one is spawned.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }

        // On this one-thread runtime the waiters cannot run before the next `get`, which bb8
        // alone would answer with the connection just handed back, ahead of both of them.
        drop(held);
        let late = pool.get().await.unwrap();
        order.lock().unwrap().push("late");
        drop(late);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["first", "second", "late"]);
    }

    /// Opens its first connection at once; every later attempt hangs, as a connect to a
    /// server that drops packets does.
    #[derive(Debug, Clone, Default)]
    struct HangsAfterFirst {
        opened: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl ManageConnection for HangsAfterFirst {
        type Connection = ();
        type Error = std::io::Error;

        async fn connect(&self) -> Result<(), std::io::Error> {
            if self.opened.fetch_add(1, Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok(())
        }

        async fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> {
            Ok(())
        }

        fn has_broken(&self, _: &mut ()) -> bool {
            false
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_out_bounds_the_wait_for_a_turn_and_the_connect_together() {
        let pool = CheckedPool::build(
            builder(1, Duration::from_secs(10)),
            HangsAfterFirst::default(),
        );

        let mut held = pool.get().await.unwrap();
        held.mark_broken();
        let started = tokio::time::Instant::now();
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|_| ()) })
        };
        // The turn comes after 8 s, when the broken connection is closed; opening a new one
        // then hangs, and only 2 s of the time-out are left for it.
        tokio::time::sleep(Duration::from_secs(8)).await;
        drop(held);
        let err = waiter.await.unwrap().expect_err("the connect hangs");
        assert!(
            matches!(err, CheckoutError::Pool(bb8::RunError::TimedOut)),
            "{err:?}"
        );
        assert_eq!(started.elapsed().as_secs(), 10, "not 8 + a fresh 10");
    }

    #[tokio::test]
    async fn a_failed_connect_fails_the_checkout_at_once_and_the_next_one_recovers() {
        let up = Arc::new(AtomicBool::new(false));
        let pool = CheckedPool::build(
            builder(2, Duration::from_secs(30)),
            Flaky { up: up.clone() },
        );

        let started = Instant::now();
        let err = pool.get().await.expect_err("the server is down");
        assert!(matches!(err, CheckoutError::ConnectFailed(_)), "{err:?}");
        assert!(err.to_string().contains("ConnectionRefused"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "failed after {:?}, not at once",
            started.elapsed()
        );

        up.store(true, Ordering::SeqCst);
        let conn = tokio::time::timeout(Duration::from_secs(5), pool.get()).await;
        assert!(matches!(conn, Ok(Ok(_))), "the server is back");
    }
}
