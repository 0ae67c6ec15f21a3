//! `stint-collector [OPTIONS]`: runs the collector until killed, logging each upload with a UTC
//! timestamp. `stint-collector --help` lists the options; `docs/collector.md` shows a deployment.

use std::net::IpAddr;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant, SystemTime};
use stint_collector::{utc_timestamp, Collector, CollectorOptions, Database, DEFAULT_DB_FILE};

const USAGE: &str = "usage: stint-collector [OPTIONS]

Receives the Stint SDK's batches (POST /api/v3/data) and serves a sessions dashboard (/).

  --port N                 port to listen on (default 0: a free one)
  --bind ADDR              address to listen on (default 127.0.0.1); any non-loopback
                           address needs --dashboard-token
  --db PATH|URL            SQLite file, created if missing (default stint-collector.db in the
                           working directory; :memory: keeps nothing across restarts)
  --api-key KEY            accept batches carrying KEY (repeatable); each key is an app
  --api-keys-file FILE     accept the keys in FILE, one a line (# starts a comment)
                           Without any key every key is accepted (and a warning says so);
                           with keys, any other gets 401 and nothing of it is stored.
  --dashboard-token TOKEN  the pages and every /api/ read or delete need TOKEN, as the HTTP
                           Basic password (any user name) or Authorization: Bearer TOKEN;
                           also read from STINT_DASHBOARD_TOKEN
  --tls-cert PEM           serve HTTPS with this certificate chain...
  --tls-key PEM            ...and this private key
  --retain-days N          delete datapoints older than N days, at start-up and hourly
  --test-controls          enable POST /admin/faults and /admin/reset (tests only)
  -h, --help               print this help and exit
  -V, --version            print the version and exit";

/// What the command line asks for.
#[derive(Debug)]
struct Args {
    options: CollectorOptions,
    retain_days: Option<u32>,
}

enum Parsed {
    Run(Box<Args>),
    /// `--help` or `--version`: print this to stdout and exit 0.
    Print(String),
}

fn parse_args(
    mut args: impl Iterator<Item = String>,
    token_from_env: Option<String>,
) -> Result<Parsed, String> {
    let mut options = CollectorOptions::default().with_db_file(DEFAULT_DB_FILE);
    options.dashboard_token = token_from_env.filter(|token| !token.is_empty());
    let mut retain_days = None;
    let (mut cert, mut key) = (None, None);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs {what}"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Print(USAGE.to_string())),
            "-V" | "--version" => {
                return Ok(Parsed::Print(format!(
                    "stint-collector {}",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            "--port" | "-p" => {
                let text = value("a value")?;
                options.port = text
                    .parse()
                    .map_err(|_| format!("--port: not a port number: {text:?}"))?;
            }
            "--bind" => {
                let text = value("an address")?;
                options.bind = text
                    .parse::<IpAddr>()
                    .map_err(|_| format!("--bind: not an IP address: {text:?}"))?;
            }
            "--db" => options.database = Database::parse(&value("a path or URL")?),
            "--api-key" => {
                let key = value("a key")?;
                if key.trim().is_empty() {
                    return Err("--api-key: the key is empty".into());
                }
                options.api_keys.push(key);
            }
            "--api-keys-file" => {
                let path = value("a file")?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|error| format!("--api-keys-file {path}: {error}"))?;
                let keys = keys_in(&text);
                if keys.is_empty() {
                    return Err(format!("--api-keys-file {path}: no key in the file"));
                }
                options.api_keys.extend(keys);
            }
            "--dashboard-token" => {
                let token = value("a token")?;
                if token.is_empty() {
                    return Err("--dashboard-token: the token is empty".into());
                }
                options.dashboard_token = Some(token);
            }
            "--tls-cert" => cert = Some(value("a PEM file")?),
            "--tls-key" => key = Some(value("a PEM file")?),
            "--retain-days" => {
                let text = value("a number of days")?;
                retain_days = Some(text.parse::<u32>().ok().filter(|days| *days > 0).ok_or(
                    format!("--retain-days: not a whole number of days: {text:?}"),
                )?);
            }
            "--test-controls" => options.test_controls = true,
            _ => return Err(format!("unknown argument {arg:?}\n\n{USAGE}")),
        }
    }
    match (cert, key) {
        (Some(cert), Some(key)) => options = options.with_tls(cert, key),
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    Ok(Parsed::Run(Box::new(Args {
        options,
        retain_days,
    })))
}

/// The keys of an API keys file: one a line, `#` to the end of a line is a comment.
fn keys_in(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect()
}

/// One log line on stdout: "2026-12-04T16:50:07.123Z INFO message".
fn log(level: &str, message: &str) {
    println!("{} {level} {message}", utc_timestamp(SystemTime::now()));
}

fn main() -> ExitCode {
    let token = std::env::var("STINT_DASHBOARD_TOKEN").ok();
    let args = match parse_args(std::env::args().skip(1), token) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Print(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("stint-collector: {message}");
            return ExitCode::from(2);
        }
    };
    let Args {
        options,
        retain_days,
    } = *args;
    let database = options.database.to_string();
    let (bind, port) = (options.bind, options.port);
    let open_ingest = options.api_keys.is_empty();
    let protected = options.dashboard_token.is_some();
    let collector = match Collector::start_with(options) {
        Ok(collector) => collector,
        Err(error) => {
            eprintln!("stint-collector: cannot start on {bind}:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The first three lines are the start-up banner that scripts read (no timestamp).
    println!("stint-collector listening on {}", collector.url());
    println!("dashboard: {}/", collector.url());
    println!("database: {database}");
    if open_ingest {
        log(
            "WARN",
            "no API key configured: every key is accepted (set --api-key or --api-keys-file)",
        );
    }
    if !protected {
        log(
            "INFO",
            "no dashboard token: the dashboard is open to whoever reaches this address",
        );
    }
    let retention = retain_days.map(|days| Duration::from_secs(u64::from(days) * 86_400));
    let mut last_purge: Option<Instant> = None;

    let mut seen = 0;
    loop {
        if let Some(age) = retention {
            if last_purge.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                last_purge = Some(Instant::now());
                match collector.delete_older_than(age) {
                    Ok(deleted) => log(
                        "INFO",
                        &format!(
                            "retention: deleted {deleted} datapoints older than {} days",
                            age.as_secs() / 86_400
                        ),
                    ),
                    Err(error) => log("ERROR", &format!("retention: {error}")),
                }
            }
        }
        if collector.request_count() < seen {
            log("INFO", "(request log reset)");
            seen = 0;
        }
        for request in collector.requests_since(seen) {
            seen += 1;
            let mut line = format!(
                "POST /api/v3/data -> {} ({} datapoints, {} bytes{})",
                request.status,
                request.event_count,
                request.body_bytes,
                match request.content_encoding.as_deref() {
                    Some(encoding) => format!(", {encoding}"),
                    None => String::new(),
                }
            );
            if let Some(fault) = &request.fault {
                line.push_str(&format!(" [injected {fault}]"));
            }
            if let Some(reason) = &request.rejection {
                line.push_str(&format!(": {reason}"));
            }
            log("INFO", &line);
        }
        thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: Option<&str>) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| s.to_string()), env.map(String::from))
    }

    fn run(args: &[&str], env: Option<&str>) -> Args {
        match parse(args, env) {
            Ok(Parsed::Run(args)) => *args,
            _ => panic!("expected options for {args:?}"),
        }
    }

    #[test]
    fn help_and_version_are_printed_not_refused() {
        assert!(
            matches!(parse(&["--help"], None), Ok(Parsed::Print(text)) if text.contains("--api-key"))
        );
        assert!(
            matches!(parse(&["--version"], None), Ok(Parsed::Print(text)) if text.starts_with("stint-collector 0."))
        );
    }

    #[test]
    fn keys_come_from_flags_and_files() {
        assert_eq!(
            keys_in("# production\nkey-a\n\n  key-b  # the beta app\n#key-c\n"),
            ["key-a", "key-b"]
        );
        let args = run(&["--api-key", "one", "--api-key=two"], None);
        assert_eq!(args.options.api_keys, ["one", "two"]);
        assert!(parse(&["--api-key", " "], None).is_err());
    }

    #[test]
    fn the_token_comes_from_the_flag_or_the_environment() {
        assert_eq!(
            run(&[], Some("from-env"))
                .options
                .dashboard_token
                .as_deref(),
            Some("from-env")
        );
        assert_eq!(
            run(&["--dashboard-token", "flag"], Some("env"))
                .options
                .dashboard_token
                .as_deref(),
            Some("flag")
        );
        assert_eq!(run(&[], Some("")).options.dashboard_token, None);
    }

    #[test]
    fn bad_values_are_named() {
        let error = |args: &[&str]| parse(args, None).err().unwrap_or_default();
        assert!(error(&["--bind", "example.com"]).contains("not an IP address"));
        assert!(error(&["--retain-days", "0"]).contains("--retain-days"));
        assert!(error(&["--tls-cert", "a.pem"]).contains("go together"));
        assert!(error(&["--bogus"]).contains("unknown argument"));
        let args = run(
            &[
                "--db",
                "postgres://u:p@h/db",
                "--retain-days",
                "30",
                "--test-controls",
            ],
            None,
        );
        assert_eq!(
            args.options.database,
            Database::Postgres("postgres://u:p@h/db".into())
        );
        assert_eq!(args.retain_days, Some(30));
        assert!(args.options.test_controls);
    }
}
