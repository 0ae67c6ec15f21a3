//! `stint-collector [--port N]`: runs the collector until killed, logging each upload.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;
use stint_collector::Collector;

const USAGE: &str = "usage: stint-collector [--port N]   (default 0: a free port)";

fn parse_port(mut args: impl Iterator<Item = String>) -> Result<u16, String> {
    let mut port = 0;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--port" | "-p" => args.next().ok_or("--port needs a value")?,
            _ => match arg.strip_prefix("--port=") {
                Some(value) => value.to_string(),
                None => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
            },
        };
        port = value
            .parse()
            .map_err(|_| format!("not a port number: {value:?}"))?;
    }
    Ok(port)
}

fn main() -> ExitCode {
    let port = match parse_port(std::env::args().skip(1)) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let collector = match Collector::start_on_port(port) {
        Ok(collector) => collector,
        Err(error) => {
            eprintln!("stint-collector: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("stint-collector listening on {}", collector.url());
    println!("dashboard: {}/", collector.url());

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
