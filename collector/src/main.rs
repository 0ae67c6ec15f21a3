//! `stint-collector [--port N] [--db PATH]`: runs the collector until killed, logging each
//! upload. The data is kept in the SQLite file `PATH` (default `stint-collector.db` in the
//! working directory; `:memory:` keeps nothing).

use std::process::ExitCode;
use std::thread;
use std::time::Duration;
use stint_collector::{Collector, CollectorOptions, Database, DEFAULT_DB_FILE};

const USAGE: &str = "usage: stint-collector [--port N] [--db PATH]
  --port N    port on 127.0.0.1 (default 0: a free one)
  --db PATH   SQLite database file, created if missing (default stint-collector.db in the
              working directory; :memory: keeps nothing across restarts)";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<CollectorOptions, String> {
    let mut options = CollectorOptions::default().with_db_file(DEFAULT_DB_FILE);
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
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--port" | "-p" => {
                let text = value("a value")?;
                options.port = text
                    .parse()
                    .map_err(|_| format!("not a port number: {text:?}"))?;
            }
            "--db" => {
                let path = value("a path")?;
                options.database = if path == ":memory:" {
                    Database::Memory
                } else {
                    Database::File(path.into())
                };
            }
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let database = options.database.to_string();
    let port = options.port;
    let collector = match Collector::start_with(options) {
        Ok(collector) => collector,
        Err(error) => {
            eprintln!("stint-collector: cannot start on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("stint-collector listening on {}", collector.url());
    println!("dashboard: {}/", collector.url());
    println!("database: {database}");

    let mut seen = 0;
    loop {
        thread::sleep(Duration::from_millis(250));
        if collector.request_count() < seen {
            println!("(request log reset)");
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
            println!("{line}");
        }
    }
}
