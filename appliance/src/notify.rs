//! The systemd notify protocol (sd_notify(3)): READY=1 once serving, WATCHDOG=1 while
//! alive, STOPPING=1 on the way out. A datagram to $NOTIFY_SOCKET; nothing when unset.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn socket_path() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn send(state: &str) {
    if let Some(path) = socket_path()
        && let Err(e) = send_to(&path, state)
    {
        log::warn!("cannot notify systemd ({state}): {e}");
    }
}

/// Sends one notification to the socket at `path` (`@name` for an abstract socket).
pub fn send_to(path: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        // An abstract socket: the name follows a NUL byte (unix(7)).
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// Half the watchdog interval systemd expects pings within, when it set one for us.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
