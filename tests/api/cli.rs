//! The command line: openapi, migrate, output into a closed pipe, and
//! graceful shutdown of `serve`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{binary_command, run_binary};

#[test]
fn openapi_command_prints_the_committed_spec() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (status, yaml, _) = run_binary(dir.path(), &["openapi", "--format", "yaml"], &[]);
    assert_eq!(status, 0);
    let committed = std::fs::read_to_string(root.join("openapi/openapi.yaml")).unwrap();
    assert!(
        yaml == committed,
        "openapi/openapi.yaml is stale; regenerate with `UPDATE_OPENAPI=1 cargo test --test api docs::`"
    );
    let (status, json, _) = run_binary(dir.path(), &["openapi"], &[]);
    assert_eq!(status, 0);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("JSON spec");
    assert_eq!(parsed["servers"][0]["url"], "/api/v1");
}

/// `wemaster openapi | head -1`: the reader takes `lines` lines and goes
/// away. Returns the exit status and what the binary wrote to stderr.
fn run_into_a_closed_pipe(args: &[&str], lines: usize) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = binary_command(dir.path(), args, &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    for _ in 0..lines {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "{args:?} printed fewer than {lines} lines"
        );
    }
    drop(reader);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    // The spec is far larger than a pipe's buffer, so its writer meets the
    // closed pipe; `config` is small, so its reader leaves before it starts.
    for (args, lines) in [
        (&["openapi"][..], 1),
        (&["openapi", "--format", "yaml"][..], 1),
        (&["config"][..], 0),
    ] {
        let (status, stderr) = run_into_a_closed_pipe(args, lines);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(status, Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} said: {stderr}");
    }
}

#[test]
fn migrate_twice_reports_the_same_version() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("WEMASTER_DATABASE__PATH", "db/w.db")];
    let (status, first, stderr) = run_binary(dir.path(), &["migrate"], &env);
    assert_eq!(status, 0, "{stderr}");
    assert!(first.contains("(was 0)"), "{first}");
    let (status, second, _) = run_binary(dir.path(), &["migrate"], &env);
    assert_eq!(status, 0);
    let v = wemaster::db::schema_version();
    assert!(
        second.contains(&format!("schema version {v} (was {v})")),
        "{second}"
    );
}

/// `wemaster serve` started in `dir` on a free port with cheap hashing,
/// its stderr read up to the listening line: the child, the port, the lines
/// seen so far and the rest of stderr.
struct Serving {
    child: std::process::Child,
    port: u16,
    seen: Vec<String>,
    lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
}

fn serve_in(dir: &std::path::Path) -> Serving {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = binary_command(dir, &[], &[])
        .env("WEMASTER_SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("WEMASTER_METRICS__ADDR", "127.0.0.1:0")
        .env("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64")
        .env("WEMASTER_AUTH__ARGON2_ITERATIONS", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "server never listened: {seen:?}");
        let line = lines.next().expect("log line").unwrap();
        let listening = line.contains("listening;");
        seen.push(line);
        if listening {
            break;
        }
    }
    Serving {
        child,
        port,
        seen,
        lines,
    }
}

fn terminate(child: &std::process::Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[test]
fn the_database_its_wal_and_backups_are_its_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let dir = tempfile::tempdir().unwrap();
    let Serving { mut child, .. } = serve_in(dir.path());
    let data = dir.path().join("data");
    // Read while the server runs (the WAL and shared memory exist only
    // then), asserted once it stopped, so a failure leaves no server behind.
    let modes: Vec<_> = ["", "wemaster.db", "wemaster.db-wal", "wemaster.db-shm"]
        .map(|file| (file, mode(&data.join(file))))
        .into();
    terminate(&child);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        modes,
        [
            ("", 0o700),
            ("wemaster.db", 0o600),
            ("wemaster.db-wal", 0o600),
            ("wemaster.db-shm", 0o600)
        ]
    );
    let (code, _, err) = run_binary(dir.path(), &["backup", "copies/b.db"], &[]);
    assert_eq!(code, 1, "the folder must exist: {err}");
    std::fs::create_dir(dir.path().join("copies")).unwrap();
    let (code, _, err) = run_binary(dir.path(), &["backup", "copies/b.db"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&dir.path().join("copies/b.db")), 0o600, "backup");
}

#[test]
fn a_second_ctrl_c_says_what_it_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let Serving {
        mut child,
        port,
        mut lines,
        ..
    } = serve_in(dir.path());
    // A connection the server surely holds (it answered once on it), then
    // a request in progress on it: its headers came, its body never does.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&answer).contains(r#"{"status":"up"}"#) {
        let n = stalled.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    stalled
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .unwrap();
    // Margin for the server to read those headers (an idle connection
    // would be closed at once by the shutdown, leaving nothing to cut).
    std::thread::sleep(Duration::from_millis(100));
    let interrupt = || {
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    let mut until = |needle: &str| {
        let mut seen = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return;
            }
        }
        panic!("no line with {needle:?}: {seen:?}");
    };
    interrupt();
    until("Ctrl-C again stops at once");
    interrupt();
    until("stopped again; closing the connections left now");
    assert!(child.wait().unwrap().success());
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let Serving {
        mut child,
        port,
        lines,
        ..
    } = serve_in(dir.path());
    let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(ok, "server accepts connections");
    terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("database closed")),
        "{rest:?}"
    );
    // Logs written to a pipe or a file carry no terminal colour codes.
    assert!(
        !rest.iter().any(|l| l.contains('\x1b')),
        "ANSI escapes in piped logs: {rest:?}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("data/wemaster.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn first_start_prints_demo_logins_and_how_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let Serving {
        mut child,
        port,
        seen,
        ..
    } = serve_in(dir.path());
    terminate(&child);
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(
        text.contains("admin@test.com / admin123 (ADMIN)")
            && text.contains("student@test.com / password123 (STUDENT)"),
        "{text}"
    );
    assert!(text.contains("Ctrl-C stops the server"), "{text}");
    // Which database file, in full: it is relative to where the server started.
    let database = dir.path().canonicalize().unwrap().join("data/wemaster.db");
    assert!(
        text.contains(&format!("path={}", database.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/docs")),
        "{text}"
    );
}

#[test]
fn a_port_in_use_is_reported_before_anything_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_binary(
        dir.path(),
        &["serve"],
        &[
            ("WEMASTER_SERVER__ADDR", &addr),
            ("WEMASTER_METRICS__ADDR", "127.0.0.1:0"),
        ],
    );
    assert_ne!(status, 0);
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(
        stderr.contains("server.addr") && stderr.contains("WEMASTER_SERVER__ADDR"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing created: {stderr}"
    );
}

#[test]
fn no_log_line_carries_a_reset_token() {
    let dir = tempfile::tempdir().unwrap();
    let Serving {
        mut child,
        port,
        mut seen,
        lines,
    } = serve_in(dir.path());
    let body = r#"{"email":"student@test.com"}"#;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /api/v1/auth/forgot-password HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    // The link, with its token, is in the outbox (written after the answer).
    let conn = rusqlite::Connection::open(dir.path().join("data/wemaster.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mail: String = loop {
        let found = conn.query_row(
            "SELECT body FROM mail WHERE kind = 'PASSWORD_RESET' AND body IS NOT NULL",
            [],
            |r| r.get(0),
        );
        if let Ok(mail) = found {
            break mail;
        }
        assert!(Instant::now() < deadline, "no reset mail in the outbox");
        std::thread::sleep(Duration::from_millis(20));
    };
    let at = mail.find("token=").expect("a link with a token") + "token=".len();
    let token = mail[at..].split_whitespace().next().unwrap().to_string();
    terminate(&child);
    let _ = child.wait();
    seen.extend(lines.map_while(Result::ok));
    assert!(
        seen.iter().any(|l| l.contains("password reset")),
        "the reset is logged: {seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains(&token)),
        "a log line carries the reset token: {seen:?}"
    );
}

#[test]
fn a_config_path_naming_a_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let (code, _, stderr) =
        crate::helpers::run_binary(dir.path(), &["--config", "etc", "config"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("etc") && stderr.contains("folder"),
        "{stderr}"
    );
}
