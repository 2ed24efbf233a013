//! The harness itself: servers are isolated, stop/restart keep the port, AOF survives.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use earshot_testsupport::RedisServer;

/// Sends one inline command and returns the raw reply.
fn send(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_millis(300)))?;
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn each_server_has_its_own_port_and_data() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.port(), 6379);
    assert_eq!(a.url(), format!("redis://127.0.0.1:{}", a.port()));
    assert_eq!(send(a.port(), "SET k 1").unwrap(), "+OK\r\n");
    assert_eq!(send(b.port(), "GET k").unwrap(), "$-1\r\n");
}

#[test]
fn stop_holds_the_port_and_restart_without_aof_loses_data() {
    let mut s = RedisServer::start();
    let port = s.port();
    send(port, "SET k 1").unwrap();
    s.stop();
    assert!(!s.is_running());
    // The port is held but nothing answers.
    assert!(send(port, "PING").is_err());
    s.restart();
    assert_eq!(s.port(), port);
    assert_eq!(send(port, "GET k").unwrap(), "$-1\r\n");
}

#[test]
fn aof_data_survives_restart() {
    let mut s = RedisServer::builder().appendonly(true).start();
    assert_eq!(send(s.port(), "SET k v").unwrap(), "+OK\r\n");
    s.stop_refusing();
    assert!(TcpStream::connect(("127.0.0.1", s.port())).is_err());
    s.restart();
    assert_eq!(send(s.port(), "GET k").unwrap(), "$1\r\nv\r\n");
}

#[test]
fn drop_kills_the_server() {
    let port = {
        let s = RedisServer::start();
        s.port()
    };
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
