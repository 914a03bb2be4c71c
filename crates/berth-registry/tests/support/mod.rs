//! Shared by the registry's integration tests: a `berth serve` in this process on a real
//! loopback socket, on its own runtime thread, stopped when dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use berth_registry::{Config, Server};

pub struct Running {
    pub addr: SocketAddr,
    pub data: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a server for `cfg` with `workers` runtime threads; returns once it listens.
pub fn start(cfg: Config, workers: usize) -> Running {
    let data = cfg.data.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (atx, arx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(cfg).await.expect("bind");
            atx.send(server.local_addr()).unwrap();
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
    });
    let addr = arx
        .recv_timeout(Duration::from_secs(60))
        .expect("server started");
    Running {
        addr,
        data,
        stop: Some(tx),
        thread: Some(thread),
    }
}
