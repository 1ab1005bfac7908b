//! A TCP relay to a server, that a test can stop: the server then looks
//! gone (connections refused) to whoever was sent through the relay.

use anyhow::{Context, Result};

pub struct TcpRelay {
    addr: String,
    accept: tokio::task::JoinHandle<()>,
    cut: tokio::sync::watch::Sender<bool>,
}

impl TcpRelay {
    /// Relays a local port to `backend` (`http://host:port`).
    pub async fn start(backend: &str) -> Result<Self> {
        let backend = backend.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
        let backend = backend.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("relay listener")?;
        let addr = listener.local_addr()?.to_string();
        let (cut, cuts) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let backend = backend.clone();
                let mut cuts = cuts.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&backend).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cuts.wait_for(|cut| *cut) => {}
                        }
                    }
                });
            }
        });
        Ok(Self { addr, accept, cut })
    }

    /// `http://` address of the relay.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening and cuts every relayed connection.
    pub fn stop(&self) {
        self.accept.abort();
        let _ = self.cut.send(true);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.stop();
    }
}
