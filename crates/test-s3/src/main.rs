//! `test-s3 ROOT [PORT]`: serves ROOT as an S3-compatible server on
//! 127.0.0.1 (keys: the crate's `ACCESS_KEY` / `SECRET_KEY`), prints the
//! port, and runs until killed or until its standard input closes.

use std::io::{self, Read, Write};

fn main() -> io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let root = args
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "usage: test-s3 ROOT [PORT]"))?;
    let port = args
        .next()
        .and_then(|p| p.to_str().and_then(|p| p.parse().ok()))
        .unwrap_or(0);
    let server = test_s3::S3Server::start_on(root.as_ref(), port)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", server.port())?;
    out.flush()?;
    drop(out);
    // Runs until the parent closes our stdin (or kills us).
    let _ = io::stdin().read_to_end(&mut Vec::new());
    drop(server);
    Ok(())
}
