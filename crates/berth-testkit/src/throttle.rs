//! [`Throttle`]: a TCP proxy on 127.0.0.1 in front of a server, passing what the server sends
//! at a limited rate (what the client sends goes through at full speed). A slow source
//! registry: a transfer through it is surely in flight when a test interrupts it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// A running proxy; `Drop` stops accepting (open connections end with their client).
pub struct Throttle {
    addr: SocketAddr,
    rate: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Throttle {
    /// Forwards `127.0.0.1:PORT` to `upstream` (`HOST:PORT`), the upstream's bytes at
    /// `bytes_per_sec` (0: unlimited).
    pub fn start(upstream: &str, bytes_per_sec: u64) -> Throttle {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let rate = Arc::new(AtomicU64::new(bytes_per_sec));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, up) = (rate.clone(), stop.clone(), upstream.to_string());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(&up)) else {
                    continue;
                };
                forward(client, server, r.clone());
            }
        });
        Throttle { addr, rate, stop }
    }

    /// `127.0.0.1:PORT`, to use instead of the upstream's address.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// A new rate for what is sent from now on (0: unlimited).
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::Relaxed);
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Client → server at full speed; server → client in 16 KiB pieces at `rate` bytes/s.
fn forward(client: TcpStream, server: TcpStream, rate: Arc<AtomicU64>) {
    let pair = |a: &TcpStream, b: &TcpStream| Some((a.try_clone().ok()?, b.try_clone().ok()?));
    let (Some((mut c_in, mut s_out)), Some((mut s_in, mut c_out))) =
        (pair(&client, &server), pair(&server, &client))
    else {
        return;
    };
    thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut s_out);
        let _ = s_out.shutdown(Shutdown::Write);
    });
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = s_in.read(&mut buf) {
            if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                break;
            }
            let r = rate.load(Ordering::Relaxed);
            if r > 0 {
                thread::sleep(Duration::from_secs_f64(n as f64 / r as f64));
            }
        }
        let _ = c_out.shutdown(Shutdown::Write);
    });
}
