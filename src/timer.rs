//! The one timer helper every driver's `select!` loop uses.

/// Sleeps until `deadline`, or forever when there is none (a sans-I/O core's
/// `poll_timeout` of `None`: nothing is due until some other input).
pub async fn sleep_until<T: Into<tokio::time::Instant>>(deadline: Option<T>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
