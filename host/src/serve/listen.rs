//! Accepting connections and serving the router on each, over HTTP/1.1,
//! with the deadlines a client must keep: each request's head within
//! [`Deadlines::head`] of the connection's opening or of the last response
//! (hyper closes the connection otherwise, an idle one too) and its body
//! within [`Deadlines::body`] of its head (408). Without them a client that
//! opens connections and then sends nothing, or a byte a minute, holds a
//! task and its buffers for as long as it likes. `axum::serve` sets neither,
//! and its HTTP/2 (cleartext, prior knowledge) reads the first bytes of a
//! connection with no deadline at all, so it is not offered.

use super::http::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Sleep;

/// How long a client has to send what it owes.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From a connection's first byte (or the end of its last request) to
    /// the end of a request's head.
    pub head: Duration,
    /// From a request's head to the end of its body.
    pub body: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            head: Duration::from_secs(30),
            body: Duration::from_secs(60),
        }
    }
}

/// How long connections still open at shutdown may take to finish.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// open connections finish their requests (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    deadlines: Deadlines,
    shutdown: impl Future<Output = ()>,
) {
    let router = router.layer(axum::middleware::from_fn(move |request, next| {
        body_deadline(deadlines.body, request, next)
    }));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(deadlines.head);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // That connection's own trouble: on to the next.
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}

/// Whether accepting failed for the connection alone (its peer gave up).
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Gives the request's body a deadline `limit` from now.
async fn body_deadline(limit: Duration, request: Request, next: Next) -> Response {
    let request = request.map(|body| {
        Body::new(Deadline {
            body,
            limit,
            at: Box::pin(tokio::time::sleep(limit)),
        })
    });
    next.run(request).await
}

/// A body that fails once its deadline has passed.
struct Deadline {
    body: Body,
    limit: Duration,
    at: Pin<Box<Sleep>>,
}

/// The error a body past its deadline gives; [`body_error`] turns it into 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs_f64())]
pub struct BodyTooSlow(Duration);

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.at.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A body that could not be read as the route's answer: 413 (`too_large`)
/// past the body limit, 408 past its deadline, else 400.
pub fn body_error(
    rejection: axum::extract::rejection::BytesRejection,
    too_large: impl FnOnce() -> String,
) -> ApiError {
    use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
    match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, too_large())
        }
        other => match too_slow(&other) {
            Some(slow) => ApiError::new(StatusCode::REQUEST_TIMEOUT, slow.to_string()),
            None => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {}", other.body_text()),
            ),
        },
    }
}

/// The [`BodyTooSlow`] behind `error`, if that is what it is.
fn too_slow<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e BodyTooSlow> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(slow) = error.downcast_ref::<BodyTooSlow>() {
            return Some(slow);
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use http_body_util::StreamBody;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_at_its_deadline_and_one_on_time_does_not() {
        let limit = Duration::from_secs(5);
        let stalled =
            futures_util::stream::pending::<Result<http_body::Frame<Bytes>, axum::Error>>();
        let body = Body::new(Deadline {
            body: Body::new(StreamBody::new(stalled)),
            limit,
            at: Box::pin(tokio::time::sleep(limit)),
        });
        let error = to_bytes(body, 1024).await.unwrap_err();
        let slow = too_slow(&error).map(ToString::to_string);
        assert_eq!(
            slow.as_deref(),
            Some("the request body did not arrive within 5 s")
        );

        let body = Body::new(Deadline {
            body: Body::from("{}"),
            limit,
            at: Box::pin(tokio::time::sleep(limit)),
        });
        assert_eq!(to_bytes(body, 1024).await.unwrap(), "{}");
    }
}
