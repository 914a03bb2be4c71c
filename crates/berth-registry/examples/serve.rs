//! A registry process for tests that need a real one (kill -9, restart) before the `berth`
//! binary has `serve`: `berth-registry-serve [CONFIG.yaml]`, prints `listening on ADDR`.

fn main() {
    let cfg = match std::env::args().nth(1) {
        Some(p) => berth_registry::Config::from_file(std::path::Path::new(&p)),
        None => Ok(berth_registry::Config::default()),
    };
    let cfg = cfg.unwrap_or_else(|e| {
        eprintln!("berth-registry-serve: {e}");
        std::process::exit(2)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = berth_registry::Server::bind(cfg).await.unwrap_or_else(|e| {
            eprintln!("berth-registry-serve: {e}");
            std::process::exit(2)
        });
        println!("listening on {}", server.local_addr());
        server
            .run(berth_registry::shutdown_signal())
            .await
            .expect("serve");
    });
}
