//! Problem bodies for requests hyper cannot parse.
//!
//! hyper answers a request it cannot parse (a malformed request line or
//! header, a bad `Content-Length`, a path that is not UTF-8: 400; a request
//! target over 64 KiB: 414; a header section over its buffer: 431) by itself,
//! with an empty body, and never calls the service, so no layer of ours sees
//! it. hyper has no hook for that answer, so [`ProblemIo`] wraps the
//! connection: a response head written while every request handed to the
//! service already has its answer can only be hyper's own, and such an empty
//! 400, 414 or 431 is replaced on the wire by the same status with a problem
//! body and a `code`, as every other error of this server is.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use poem_openapi::types::ToJSON;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{PROBLEM_JSON, Problem};

/// Counts the requests a connection hands to the service; shared by the
/// service function (which counts) and the connection's [`ProblemIo`].
#[derive(Debug, Clone, Default)]
pub struct Dispatched(Arc<AtomicU64>);

impl Dispatched {
    /// Records that the service was given a request.
    pub fn one_more(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A connection whose empty parse-error answers become problem bodies.
pub struct ProblemIo<T> {
    inner: T,
    dispatched: Dispatched,
    /// Response heads written for requests the service was handed.
    answered: u64,
    /// A replacement answer still to be written, and how much of it is.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T, dispatched: Dispatched) -> Self {
        Self {
            inner,
            dispatched,
            answered: 0,
            pending: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues `answer` in place of hyper's `len` bytes, which count as
    /// written; the answer goes out now or at the next write or flush.
    fn answer_instead(
        &mut self,
        cx: &mut Context<'_>,
        answer: Vec<u8>,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        self.pending = Some((answer, 0));
        match self.drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(len)),
        }
    }

    /// The answer to write instead of `buf`, when `buf` is hyper's own empty
    /// answer to a request it could not parse.
    fn replacement(&mut self, buf: &[u8]) -> Option<Vec<u8>> {
        let status = head_status(buf)?;
        if self.answered < self.dispatched.count() {
            // The head of an answer the service gave.
            self.answered += 1;
            return None;
        }
        problem_answer(status, buf)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(answer) = self.replacement(buf) {
            return self.answer_instead(cx, answer, buf.len());
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        // A head opens the first slice; hyper's own answers are one slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(answer) = self.replacement(first)
        {
            let len = bufs.iter().map(|b| b.len()).sum();
            return self.answer_instead(cx, answer, len);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The status of an HTTP/1 response head that `buf` starts with.
fn head_status(buf: &[u8]) -> Option<u16> {
    let rest = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

/// The problem answer for hyper's empty `status` answer `head`; `None` for
/// anything else.
fn problem_answer(status: u16, head: &[u8]) -> Option<Vec<u8>> {
    let (code, detail) = match status {
        400 => (
            "MALFORMED_REQUEST",
            "the request is not valid HTTP/1.1: its request line, a header or its Content-Length is malformed, or its path is not UTF-8",
        ),
        414 => (
            "URI_TOO_LONG",
            "the request target is longer than this server accepts (64 KiB)",
        ),
        431 => (
            "HEADERS_TOO_LARGE",
            "the request's header section is larger than this server accepts",
        ),
        _ => return None,
    };
    let head = std::str::from_utf8(head).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    // An answer with a body of its own is not hyper's empty one.
    if !headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    let problem = Problem {
        kind: "about:blank".into(),
        title: status_line.get(13..).unwrap_or_default().to_string(),
        status,
        detail: detail.into(),
        code: code.into(),
        field: None,
        seats_left: None,
    };
    let body = problem.to_json_string();
    let mut answer = format!("{status_line}\r\n");
    for header in headers.iter().filter(|h| {
        let name = h.split(':').next().unwrap_or_default();
        !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("content-type")
    }) {
        answer.push_str(header);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!(
        "content-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    Some(answer.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\n";

    #[test]
    fn hyper_s_empty_answer_becomes_a_problem() {
        let answer = String::from_utf8(problem_answer(431, HYPER_431).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("date: Tue, 01 Dec 2026"), "{head}");
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 431);
        assert_eq!(problem["code"], "HEADERS_TOO_LARGE");
        assert_eq!(problem["title"], "Request Header Fields Too Large");
    }

    #[test]
    fn other_answers_are_left_alone() {
        assert_eq!(
            problem_answer(404, b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n";
        assert_eq!(problem_answer(400, with_body), None);
        assert_eq!(head_status(b"{\"HTTP/1.1 400"), None);
        assert_eq!(head_status(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
    }
}
