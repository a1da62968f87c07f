//! Configuration precedence and configuration errors.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use std::path::Path;

use figment::Jail;
use wemaster::config::Config;

use crate::helpers::run_binary;

#[test]
fn defaults_apply_when_the_file_is_absent() {
    Jail::expect_with(|_jail| {
        let config = Config::load(Path::new("wemaster.toml")).expect("defaults load");
        assert_eq!(config.server.addr.to_string(), "127.0.0.1:3002");
        let here = std::env::current_dir().unwrap();
        assert_eq!(config.database.path, here.join("data/wemaster.db"));
        assert!(config.demo.seed_on_empty);
        Ok(())
    });
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "wemaster.toml",
            "[server]\naddr = \"127.0.0.1:4000\"\n[database]\nread_pool_size = 3\npath = \"x.db\"\n",
        )?;
        jail.set_env("WEMASTER_SERVER__ADDR", "127.0.0.1:5000");
        jail.set_env("WEMASTER_RATE_LIMIT__ENABLED", "false");
        let config = Config::load(Path::new("wemaster.toml")).expect("loads");
        assert_eq!(config.server.addr.to_string(), "127.0.0.1:5000", "env wins");
        assert_eq!(config.database.read_pool_size, 3, "file wins over default");
        let here = std::env::current_dir().unwrap();
        assert_eq!(config.database.path, here.join("x.db"));
        assert!(!config.rate_limit.enabled);
        assert_eq!(config.database.busy_timeout_ms, 5_000, "default kept");
        Ok(())
    });
}

#[test]
fn a_partial_table_keeps_the_defaults_of_its_other_keys() {
    Jail::expect_with(|jail| {
        jail.create_file("wemaster.toml", "[rate_limit.failures]\nburst = 50\n")?;
        jail.set_env("WEMASTER_RATE_LIMIT__WRITES__PER_MINUTE", "900");
        let config = Config::load(Path::new("wemaster.toml")).expect("loads");
        let defaults = Config::default().rate_limit;
        assert_eq!(config.rate_limit.failures.burst, 50);
        assert_eq!(
            config.rate_limit.failures.per_minute,
            defaults.failures.per_minute
        );
        assert_eq!(config.rate_limit.writes.per_minute, 900);
        assert_eq!(config.rate_limit.writes.burst, defaults.writes.burst);
        Ok(())
    });
    // Without any file, as the docs' environment example runs.
    Jail::expect_with(|jail| {
        jail.set_env("WEMASTER_RATE_LIMIT__FAILURES__BURST", "50");
        let config = Config::load(Path::new("absent.toml")).expect("loads");
        assert_eq!(config.rate_limit.failures.burst, 50);
        Ok(())
    });
}

#[test]
fn relative_paths_are_relative_to_the_file_that_says_them() {
    Jail::expect_with(|jail| {
        let here = std::env::current_dir().unwrap();
        jail.create_dir("site")?;
        jail.create_file("site/wemaster.toml", "[backup]\ndir = \"snapshots\"\n")?;
        jail.set_env("WEMASTER_HEALTH__LITESTREAM_SOCKET", "run/ls.sock");
        let config = Config::load(Path::new("site/wemaster.toml")).expect("loads");
        // From the file, and the built-in default: beside the file.
        assert_eq!(config.backup.dir, here.join("site/snapshots"));
        assert_eq!(config.database.path, here.join("site/data/wemaster.db"));
        // From the environment: the current folder, as a shell reads it.
        assert_eq!(config.health.litestream_socket, here.join("run/ls.sock"));
        Ok(())
    });
}

fn load_error(toml: &str, env: &[(&str, &str)]) -> String {
    let mut message = String::new();
    Jail::expect_with(|jail| {
        jail.create_file("wemaster.toml", toml)?;
        for (k, v) in env {
            jail.set_env(k, v);
        }
        message = Config::load(Path::new("wemaster.toml"))
            .expect_err("config must be refused")
            .to_string();
        Ok(())
    });
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

#[test]
fn unknown_key_in_file_is_refused_by_name() {
    let msg = load_error("[server]\nadress = \"127.0.0.1:1\"\n", &[]);
    assert!(msg.contains("server.adress"), "{msg}");
}

#[test]
fn unknown_section_is_refused_by_name() {
    let msg = load_error("[sever]\naddr = \"127.0.0.1:1\"\n", &[]);
    assert!(msg.contains("sever"), "{msg}");
}

#[test]
fn unknown_key_in_env_is_refused_by_name() {
    let msg = load_error("", &[("WEMASTER_DATABASE__POOLSIZE", "4")]);
    assert!(msg.contains("database.poolsize"), "{msg}");
}

#[test]
fn wrong_type_is_refused_by_name() {
    let msg = load_error("[database]\nread_pool_size = \"many\"\n", &[]);
    assert!(msg.contains("database.read_pool_size"), "{msg}");
}

#[test]
fn impossible_port_is_refused_by_name() {
    let msg = load_error("[server]\naddr = \"127.0.0.1:70000\"\n", &[]);
    assert!(msg.contains("server.addr"), "{msg}");
}

#[test]
fn a_host_name_is_resolved_and_an_unknown_one_explained() {
    Jail::expect_with(|jail| {
        jail.set_env("WEMASTER_SERVER__ADDR", "localhost:3313");
        let config = Config::load(Path::new("wemaster.toml")).expect("loads");
        assert_eq!(config.server.addr.to_string(), "127.0.0.1:3313");
        Ok(())
    });
    let msg = load_error("[server]\naddr = \"no-such-host.invalid:3313\"\n", &[]);
    assert!(
        msg.contains("the host name `no-such-host.invalid` could not be resolved")
            && msg.contains("e.g. 127.0.0.1:3002 or localhost:3002"),
        "{msg}"
    );
    let msg = load_error("[server]\naddr = \"localhost\"\n", &[]);
    assert!(msg.contains("no port"), "{msg}");
}

#[test]
fn toml_syntax_errors_fit_one_line_and_show_the_line() {
    let msg = load_error("[server\naddr = 1\n", &[]);
    assert!(
        msg.contains("TOML syntax error at line 1, column 8: invalid table header")
            && msg.ends_with("(`[server`)"),
        "{msg}"
    );
    let msg = load_error("[server]\naddr = \"127.0.0.1:1\n", &[]);
    assert!(
        msg.contains("line 2, column 20: invalid basic string"),
        "{msg}"
    );
}

#[test]
fn variables_that_only_share_the_prefix_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_binary(dir.path(), &["config"], &[("WEMASTER_HOME", "/x")]);
    assert_eq!(status, 0, "{stderr}");
    // One underscore where two belong is still a mistake, named as such.
    let (status, _, stderr) = run_binary(
        dir.path(),
        &["config"],
        &[("WEMASTER_SERVER_ADDR", "127.0.0.1:1")],
    );
    assert_eq!(status, 2);
    assert!(
        stderr.contains("did you mean WEMASTER_SERVER__ADDR (`server.addr`)?"),
        "{stderr}"
    );
}

#[test]
fn zero_pool_size_is_refused_by_name() {
    let msg = load_error("[database]\nread_pool_size = 0\n", &[]);
    assert!(msg.contains("database.read_pool_size"), "{msg}");
}

/// A configuration file, environment variables, and what the error line must say.
type Mistake<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<&'a str>);

/// The mistakes newcomers made.
fn mistakes() -> Vec<Mistake<'static>> {
    vec![
        (
            "[log]\nlevel = \"infoo\"\n",
            vec![],
            vec![
                "`log.level`",
                "\"infoo\"",
                "did you mean \"info\"",
                "trace, debug",
            ],
        ),
        (
            "",
            vec![("WEMASTER_LOG__LEVEL", "wemaster=debugg")],
            vec![
                "WEMASTER_LOG__LEVEL",
                "\"debugg\"",
                "did you mean \"debug\"",
            ],
        ),
        (
            "[database]\nread_pool_sise = 4\n",
            vec![],
            vec![
                "`database.read_pool_sise`",
                "did you mean `database.read_pool_size`?",
            ],
        ),
        (
            "[server]\nport = 8080\n",
            vec![],
            vec!["`server.port`", "did you mean `server.addr`"],
        ),
        (
            "",
            vec![("WEMASTER_SERVER__PORT", "8080")],
            vec!["WEMASTER_SERVER__PORT", "`server.addr`"],
        ),
        (
            "[log]\nformat = \"xml\"\n",
            vec![],
            vec!["`log.format`", "\"xml\" is not one of \"text\", \"json\""],
        ),
        (
            "",
            vec![("WEMASTER_SERVER__ADDR", "localhost")],
            vec!["WEMASTER_SERVER__ADDR", "\"localhost\"", "host:port"],
        ),
        (
            "",
            vec![("WEMASTER_SERVER__TRUSTED_PROXIES", "127.0.0.1")],
            vec![
                "WEMASTER_SERVER__TRUSTED_PROXIES",
                "\"127.0.0.1\"",
                "WEMASTER_SERVER__TRUSTED_PROXIES='[\"127.0.0.1\"",
            ],
        ),
        (
            "",
            vec![("WEMASTER_DATABASE__READ_POOL_SIZE", "abc")],
            vec![
                "WEMASTER_DATABASE__READ_POOL_SIZE",
                "\"abc\"",
                "whole number",
            ],
        ),
        (
            "",
            vec![("WEMASTER_BACKUP__KEEP", "0")],
            vec!["`backup.keep` = 0", "WEMASTER_BACKUP__KEEP", "at least 1"],
        ),
        (
            "",
            vec![("WEMASTER_SERVR__ADDR", "127.0.0.1:1")],
            vec!["WEMASTER_SERVR__ADDR", "did you mean `server`?"],
        ),
    ]
}

/// Each mistake a newcomer made, through the real binary: exit 2 and one line
/// naming the key (or the variable), the value and what is allowed.
#[test]
fn every_invalid_value_is_explained_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = mistakes();
    for (file, env, expected) in cases {
        std::fs::write(dir.path().join("wemaster.toml"), file).unwrap();
        let (status, _, stderr) = run_binary(dir.path(), &["config"], &env);
        assert_eq!(status, 2, "{file}{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        for part in expected {
            assert!(
                stderr.contains(part),
                "{file}{env:?}: wanted {part:?} in {stderr}"
            );
        }
        assert!(!stderr.contains("``"), "doubled backticks: {stderr}");
        assert!(!stderr.contains("port.port"), "doubled key: {stderr}");
    }
    // A list from the environment in the syntax the message gives works.
    std::fs::write(dir.path().join("wemaster.toml"), "").unwrap();
    let (status, stdout, stderr) = run_binary(
        dir.path(),
        &["config"],
        &[(
            "WEMASTER_SERVER__TRUSTED_PROXIES",
            "[\"127.0.0.1\", \"10.0.0.0/8\"]",
        )],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains("10.0.0.0/8"), "{stdout}");
}

#[test]
fn bad_config_stops_the_binary_with_status_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wemaster.toml"),
        "[database]\nread_pool_size = 0\n",
    )
    .unwrap();
    let (status, stdout, stderr) = run_binary(dir.path(), &["serve"], &[]);
    assert_eq!(status, 2, "stderr: {stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("database.read_pool_size"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    assert!(!dir.path().join("data").exists(), "nothing created");
}

#[test]
fn bad_env_value_stops_the_binary_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_binary(
        dir.path(),
        &["config"],
        &[("WEMASTER_SERVER__ADDR", "127.0.0.1:70000")],
    );
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("server.addr"), "{stderr}");
}

#[test]
fn missing_explicit_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_binary(dir.path(), &["--config", "nope.toml", "config"], &[]);
    assert_eq!(status, 2);
    assert!(stderr.contains("nope.toml"), "{stderr}");
}

#[test]
fn config_command_prints_effective_values_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custom.toml"),
        "[payments]\nwebhook_secret = \"whsec_super_secret_value\"\n",
    )
    .unwrap();
    let (status, stdout, stderr) = run_binary(
        dir.path(),
        &["config", "--config", "custom.toml"],
        &[("WEMASTER_DATABASE__PATH", "elsewhere.db")],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(!stdout.contains("whsec_super_secret_value"), "{stdout}");
    assert!(stdout.contains("********"), "{stdout}");
    assert!(stdout.contains("elsewhere.db"), "{stdout}");
    let parsed: toml::Value = toml::from_str(&stdout).expect("valid TOML");
    assert_eq!(parsed["server"]["addr"].as_str(), Some("127.0.0.1:3002"));
}

#[test]
fn shipped_config_file_loads_and_lists_every_key() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("wemaster.toml");
    let text = std::fs::read_to_string(&shipped).expect("wemaster.toml is shipped");
    Config::load(&shipped).expect("shipped file is valid");
    // Every key of the effective configuration appears in the shipped file.
    let rendered: toml::Value = toml::from_str(&Config::default().to_masked_toml()).unwrap();
    let shipped_value: toml::Value = toml::from_str(&text).unwrap();
    for (section, keys) in rendered.as_table().unwrap() {
        for key in keys.as_table().unwrap().keys() {
            assert!(
                shipped_value
                    .get(section)
                    .and_then(|s| s.get(key))
                    .is_some(),
                "wemaster.toml lacks {section}.{key}"
            );
        }
    }
}

#[test]
fn the_dev_provider_refuses_to_listen_beyond_loopback_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    for env in [
        [
            ("WEMASTER_SERVER__ADDR", "0.0.0.0:0"),
            ("WEMASTER_SERVER__PUBLIC_URL", ""),
        ],
        [
            ("WEMASTER_SERVER__ADDR", "127.0.0.1:0"),
            ("WEMASTER_SERVER__PUBLIC_URL", "https://shop.example.com"),
        ],
    ] {
        let (status, _, stderr) = run_binary(dir.path(), &["serve"], &env);
        assert_eq!(status, 2, "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("payments.provider"), "{stderr}");
        assert!(stderr.contains("payments.dev_allow_public"), "{stderr}");
        assert!(!dir.path().join("data").exists(), "nothing created");
    }
    // Loopback public URLs are fine, and so is a public demo that says so.
    for env in [
        [
            ("WEMASTER_SERVER__PUBLIC_URL", "http://localhost:3002"),
            ("WEMASTER_PAYMENTS__DEV_ALLOW_PUBLIC", "false"),
        ],
        [
            ("WEMASTER_SERVER__PUBLIC_URL", "https://demo.example.com"),
            ("WEMASTER_PAYMENTS__DEV_ALLOW_PUBLIC", "true"),
        ],
    ] {
        let (status, _, stderr) = run_binary(dir.path(), &["config"], &env);
        assert_eq!(status, 0, "{stderr}");
    }
}

#[test]
fn account_commands_need_no_payment_secrets_serving_does() {
    // The VPS recipe's order: the first admin before secrets.env exists.
    let dir = tempfile::tempdir().unwrap();
    let production = [
        ("WEMASTER_PAYMENTS__PROVIDER", "stripe"),
        ("WEMASTER_SERVER__PUBLIC_URL", "https://api.example.com"),
        ("WEMASTER_DEMO__SEED_ON_EMPTY", "false"),
        ("WEMASTER_NEW_PASSWORD", "root-password-1"),
        ("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64"),
        ("WEMASTER_AUTH__ARGON2_ITERATIONS", "1"),
    ];
    let (status, stdout, stderr) = run_binary(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "you@example.com",
            "--role",
            "ADMIN",
        ],
        &production,
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains("created ADMIN account you@example.com"),
        "{stdout}"
    );
    for command in ["serve", "config"] {
        let (status, _, stderr) = run_binary(dir.path(), &[command], &production);
        assert_eq!(status, 2, "{command}: {stderr}");
        assert!(
            stderr.contains("payments.stripe_secret_key") && stderr.contains("is required"),
            "{stderr}"
        );
    }
}

#[test]
fn a_publishable_key_is_refused_as_the_stripe_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let stripe = [
        ("WEMASTER_PAYMENTS__PROVIDER", "stripe"),
        (
            "WEMASTER_PAYMENTS__STRIPE_SECRET_KEY",
            "pk_test_51Hpublishable",
        ),
        ("WEMASTER_PAYMENTS__WEBHOOK_SECRET", "whsec_real_one"),
    ];
    let (status, _, stderr) = run_binary(dir.path(), &["config"], &stripe);
    assert_eq!(status, 2, "{stderr}");
    assert!(
        stderr.contains("payments.stripe_secret_key") && stderr.contains("sk_"),
        "{stderr}"
    );
    assert!(!stderr.contains("pk_test_51Hpublishable"), "{stderr}");
}

#[test]
fn the_stripe_provider_refuses_the_public_dev_webhook_secret() {
    let dir = tempfile::tempdir().unwrap();
    let stripe = [
        ("WEMASTER_PAYMENTS__PROVIDER", "stripe"),
        ("WEMASTER_PAYMENTS__STRIPE_SECRET_KEY", "sk_test_123"),
    ];
    let (status, _, stderr) = run_binary(dir.path(), &["serve"], &stripe);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("payments.webhook_secret"), "{stderr}");
    assert!(!stderr.contains("whsec_dev_only_change_me"), "{stderr}");
    let (status, _, stderr) = run_binary(
        dir.path(),
        &["serve"],
        &[
            stripe[0],
            stripe[1],
            (
                "WEMASTER_PAYMENTS__WEBHOOK_SECRET",
                "whsec_dev_only_change_me",
            ),
        ],
    );
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("payments.webhook_secret"), "{stderr}");
    // Its own secret: accepted, and `config` does not show it.
    let own = (
        "WEMASTER_PAYMENTS__WEBHOOK_SECRET",
        "whsec_our_own_endpoint_secret",
    );
    let (status, stdout, stderr) =
        run_binary(dir.path(), &["config"], &[stripe[0], stripe[1], own]);
    assert_eq!(status, 0, "{stderr}");
    assert!(
        !stdout.contains("whsec_our_own_endpoint_secret"),
        "{stdout}"
    );
    assert!(!stdout.contains("sk_test_123"), "{stdout}");
}

#[test]
fn checkpoints_are_wemasters_or_litestreams_and_nothing_else() {
    Jail::expect_with(|jail| {
        jail.set_env("WEMASTER_DATABASE__CHECKPOINTS", "litestream");
        jail.set_env("WEMASTER_HEALTH__LITESTREAM_SOCKET", "/run/litestream.sock");
        let config = Config::load(Path::new("wemaster.toml")).expect("loads");
        assert_eq!(
            config.database.checkpoints,
            wemaster::config::Checkpoints::Litestream
        );
        assert_eq!(
            config.health.litestream_socket,
            Path::new("/run/litestream.sock")
        );
        Ok(())
    });
    let msg = load_error("[database]\ncheckpoints = \"sqlite\"\n", &[]);
    assert!(msg.contains("database.checkpoints"), "{msg}");
    assert!(msg.contains("\"litestream\""), "{msg}");
}

#[test]
fn with_stripe_an_order_holds_its_seats_as_long_as_a_checkout_session_lasts() {
    let dir = tempfile::tempdir().unwrap();
    let stripe = [
        ("WEMASTER_PAYMENTS__PROVIDER", "stripe"),
        ("WEMASTER_PAYMENTS__STRIPE_SECRET_KEY", "sk_test_123"),
        ("WEMASTER_PAYMENTS__WEBHOOK_SECRET", "whsec_our_own"),
        ("WEMASTER_ORDERS__PENDING_TTL_SECONDS", "600"),
    ];
    let (status, _, stderr) = run_binary(dir.path(), &["config"], &stripe);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("orders.pending_ttl_seconds") && stderr.contains("1800"),
        "{stderr}"
    );
    let (status, _, stderr) = run_binary(dir.path(), &["config"], &stripe[..3]);
    assert_eq!(status, 0, "the default, 30 minutes, is enough: {stderr}");
}
