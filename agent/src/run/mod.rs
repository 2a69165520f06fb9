//! The agent's loop: load the config, plan, execute, record status, and again on every
//! trigger (a change of the config file, SIGHUP, an API apply, a periodic resync), until
//! SIGTERM or SIGINT. API calls that plan or change the desired state are answered here,
//! between reconciles, so only one thing changes the device at a time.

pub mod action_error;
pub mod config_source;
pub mod device;
mod driver;
mod files_api;
mod members_api;
pub mod service;

use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;

use crate::control::CallMsg;
pub use config_source::ConfigSource;

/// How often the agent reconciles with no other trigger (drift: a mount removed by hand).
pub const RESYNC: Duration = Duration::from_secs(10);
/// How often the fleet's logs are looked at for something new from the admins.
const FLEET_TICK: Duration = Duration::from_millis(250);
/// Changes to the config file closer together than this make one reload.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// What wakes the loop besides an API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    ConfigChanged,
    Reload,
    Stop,
}

/// What the loop receives.
#[derive(Debug)]
pub enum Wake {
    Trigger(Trigger),
    Call(CallMsg),
}

/// What the control server hands calls to: the loop's channel, seen only as a function.
fn calls(tx: &mpsc::Sender<Wake>) -> crate::control::Calls {
    let tx = tx.clone();
    std::sync::Arc::new(move |m| tx.send(Wake::Call(m)).is_ok())
}

/// How long a stop may take after SIGTERM or SIGINT before the process simply exits.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Run the agent until stopped. Returns an error only when the first config is unusable
/// or another agent already serves its control socket.
pub fn run(source: ConfigSource) -> Result<()> {
    let src = source.read()?;
    let first = config_source::check(&src);
    let Some(config) = first.config else {
        anyhow::bail!("config {} is invalid; nothing was started", src.name());
    };
    raise_open_files_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (tx, rx) = mpsc::channel();
    {
        let tx = tx.clone();
        rt.spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::hangup()),
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            loop {
                let t = tokio::select! {
                    _ = hup.recv() => Trigger::Reload,
                    _ = term.recv() => Trigger::Stop,
                    _ = int.recv() => Trigger::Stop,
                };
                if t == Trigger::Stop {
                    // Stopping is bounded whatever the loop is doing: after the grace
                    // period, or at a second signal, the process ends (what was
                    // acknowledged is durable; a mount left behind is repaired at the next
                    // start).
                    std::thread::spawn(|| {
                        std::thread::sleep(STOP_GRACE);
                        tracing::error!(
                            grace_s = STOP_GRACE.as_secs(),
                            "did not stop in time after SIGTERM; exiting now"
                        );
                        std::process::exit(1);
                    });
                    let _ = tx.send(Wake::Trigger(t));
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    tracing::error!("a second stop signal; exiting now");
                    std::process::exit(1);
                }
                if tx.send(Wake::Trigger(t)).is_err() {
                    return;
                }
            }
        });
    }
    let mut agent = driver::Agent::start(rt, source, src, config, tx)?;
    let manager = service::Notifier::from_env();
    let mut announced = false;
    loop {
        let mut converged = agent.reconcile();
        if agent.follow_admins() || agent.check_probation() {
            // The admins' config was applied (or put back): converge before reporting.
            converged = agent.reconcile();
        }
        agent.report_to_admins(converged);
        let generation = agent.generation();
        let status = if converged {
            format!("generation {generation}: converged")
        } else {
            format!("generation {generation}: converging")
        };
        if announced {
            manager.status(&status)
        } else {
            manager.ready(&status)
        }
        announced = true;
        match wait(&mut agent, &rx) {
            Next::Stop => break,
            Next::Reconcile => {}
            Next::Reload => {
                manager.reloading();
                agent.reload_file();
            }
        }
    }
    manager.stopping();
    tracing::info!("stopping: unmounting and closing spaces");
    agent.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// Every open space holds about eight files: lift the soft limit on open files to the hard
/// one, as the hard limit is what the administrator granted.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "cannot raise the open-files limit");
        }
    }
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Reconcile,
    Reload,
    Stop,
}

/// Sleep until a trigger, the next retry or the resync period; answer API calls meanwhile.
/// A burst of triggers makes one reload.
fn wait(agent: &mut driver::Agent, rx: &mpsc::Receiver<Wake>) -> Next {
    let deadline = std::time::Instant::now() + agent.wait_time();
    let mut next = None;
    loop {
        let timeout = match next {
            // Coalescing: only a short pause more.
            Some(_) => DEBOUNCE,
            None => deadline.saturating_duration_since(std::time::Instant::now()),
        };
        let ticking = next.is_none() && agent.follows_fleet() && timeout > FLEET_TICK;
        let timeout = if ticking { FLEET_TICK } else { timeout };
        match rx.recv_timeout(timeout) {
            Err(mpsc::RecvTimeoutError::Timeout) if ticking => {
                if agent.fleet_grew() && agent.follow_admins() {
                    return Next::Reconcile;
                }
                // Probation is judged between reconciles too; its end is reported at once.
                let was = agent.on_probation();
                if agent.check_probation() || was && !agent.on_probation() {
                    return Next::Reconcile;
                }
            }
            Ok(Wake::Call(call)) => {
                if agent.answer(call) {
                    next = Some(next.unwrap_or(Next::Reconcile));
                }
            }
            Ok(Wake::Trigger(Trigger::Stop)) => return Next::Stop,
            Ok(Wake::Trigger(Trigger::ConfigChanged | Trigger::Reload)) => {
                next = Some(Next::Reload)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => return next.unwrap_or(Next::Reconcile),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Next::Stop,
        }
    }
}
