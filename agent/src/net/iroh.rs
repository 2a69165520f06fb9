//! iroh on the network: an endpoint whose id is the device identity, accepting sessions
//! from admitted peers and dialling every admitted identity it is not connected to, found
//! on the LAN by mDNS, on the internet through the mainline DHT, or through relays.
//!
//! The dialler looks every 2 s for admitted identities without a session and dials each
//! (one attempt at a time per identity; after a failure it waits 1 s, doubling to 60 s).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cobox_schema::config;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Network;
use crate::backoff::Backoff;
use crate::plan::EndpointSpec;
use crate::transport::iroh::{IrohOptions, IrohTransport, Relays, TransportError};

const LOOK_EVERY: Duration = Duration::from_secs(2);
const DIAL_WITHIN: Duration = Duration::from_secs(20);

/// A running iroh endpoint with its accept and dial tasks.
#[derive(Debug)]
pub struct IrohLink {
    settings: EndpointSpec,
    transport: Arc<IrohTransport>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Attempt {
    busy: bool,
    wait: Option<Duration>,
    next: Option<Instant>,
}

impl IrohLink {
    /// Bind the endpoint for the device whose identity seed is `identity_seed`.
    pub async fn start(
        net: &Network,
        identity_seed: [u8; 32],
        settings: EndpointSpec,
    ) -> Result<IrohLink, TransportError> {
        let relays = match &settings.relays {
            config::Relays::Default => Relays::Default,
            config::Relays::Disabled => Relays::Disabled,
            config::Relays::Custom(urls) => Relays::Custom(urls.clone()),
        };
        let options = IrohOptions {
            identity_seed,
            bind: None,
            relays,
            portmapper: settings.portmapper,
            mdns: settings.mdns,
            mainline: settings.mainline,
        };
        let admits = net.clone();
        let transport =
            Arc::new(IrohTransport::bind(options, Arc::new(move |who| admits.admits(who))).await?);
        tracing::info!(addresses = ?transport.local_addrs(), mdns = settings.mdns, mainline = settings.mainline, "iroh endpoint up");
        let accept = tokio::spawn(accept_loop(net.clone(), transport.clone()));
        let dial = tokio::spawn(dial_loop(net.clone(), transport.clone()));
        Ok(IrohLink {
            settings,
            transport,
            tasks: vec![accept, dial],
        })
    }

    pub fn settings(&self) -> &EndpointSpec {
        &self.settings
    }

    /// Close every connection and the endpoint.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.transport.close().await;
    }
}

async fn accept_loop(net: Network, transport: Arc<IrohTransport>) {
    while let Some(accepted) = transport.accept().await {
        match accepted {
            Ok((who, stream)) => {
                let net = net.clone();
                tokio::spawn(async move {
                    let via = super::link::Via::Iroh(stream.route_probe());
                    let (_, ended) = net.connect(stream, via, false, Some(who)).await;
                    super::log_end("iroh", Some(who), ended);
                });
            }
            Err(e) => tracing::debug!(error = %e, "an iroh connection failed before its session"),
        }
    }
}

async fn dial_loop(net: Network, transport: Arc<IrohTransport>) {
    let attempts: Arc<Mutex<BTreeMap<[u8; 32], Attempt>>> = Arc::default();
    loop {
        let now = Instant::now();
        for who in net.wanted_peers() {
            {
                let mut all = attempts.lock().unwrap_or_else(|e| e.into_inner());
                let a = all.entry(who).or_default();
                if a.busy || a.next.is_some_and(|t| t > now) {
                    continue;
                }
                a.busy = true;
            }
            let (net, transport, attempts) = (net.clone(), transport.clone(), attempts.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let lasted = match tokio::time::timeout(DIAL_WITHIN, transport.dial(who, &[])).await
                {
                    Ok(Ok(stream)) => {
                        let via = super::link::Via::Iroh(stream.route_probe());
                        let (_, ended) = net.connect(stream, via, true, Some(who)).await;
                        super::log_end("iroh", Some(who), ended);
                        started.elapsed()
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %cobox_keys::secret::hex(&who), error = %e, "iroh dial failed");
                        Duration::ZERO
                    }
                    Err(_) => Duration::ZERO,
                };
                let mut all = attempts.lock().unwrap_or_else(|e| e.into_inner());
                let a = all.entry(who).or_default();
                a.busy = false;
                let wait = if lasted >= Backoff::DIAL.longest {
                    Backoff::DIAL.first
                } else {
                    Backoff::DIAL.after(a.wait)
                };
                a.wait = Some(wait);
                a.next = Some(Instant::now() + wait);
            });
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}
