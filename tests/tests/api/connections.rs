//! A phone reporting every ten seconds keeps one connection to the server. The server must not close
//! it between two reports: a report written into a connection the server is closing at that moment
//! fails at the connection, with nothing to say whether it arrived (the load generator's soak saw 59 such
//! failures in 600,000 requests against actix-web's default of 5 s). Our own client lets an idle connection
//! go well before the server would (`homeward_shared::client::IDLE_CONNECTION_SECS`, checked against the
//! server's when it compiles).

use std::time::Duration;

use homeward_tests::{Backend, spawn_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Send `GET /health` on `stream` and read one whole answer (it has a Content-Length).
async fn health(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: homeward\r\n\r\n").await?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await??;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(head.lines().next().unwrap_or_default().to_owned());
            }
        }
    }
}

#[tokio::test]
async fn an_idle_connection_stays_open_between_a_phone_s_reports() {
    let app = spawn_app(Backend::Sqlite).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    assert_eq!(health(&mut stream).await.expect("the first answer"), "HTTP/1.1 200 OK");

    // Longer than actix-web's default keep-alive, as a phone waits between reports.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let again = health(&mut stream).await;
    assert_eq!(
        again.as_ref().map(String::as_str).ok(),
        Some("HTTP/1.1 200 OK"),
        "the same connection answers after 7 s idle: {again:?}"
    );
}
